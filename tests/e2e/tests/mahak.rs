//! The engine against the reference server speaking the real Mahak dialect
//! (`docs/WIRE.md`), with its habits: MD5 login and a JWT that says when it
//! expires, `from<Entity>Version` pulls with no `hasMore` under every kind of
//! page cap, PascalCase answers, partial saves, and no deduplication of a
//! resent create. Each flow over loopback HTTP or in-process, as noted.

use std::sync::Arc;
use std::time::Duration;

use rowsync::{Engine, Error, RecordId};
use rowsync_e2e::*;
use rowsync_refserver::{Fault, InProcessTransport, RefServer, RunningServer, ServerConfig};
use serde_json::json;

/// A shop: `products` products (each with a product detail and its stock
/// for our visitor) and `people` customers.
fn shop_with(config: ServerConfig, products: usize, people: usize) -> Arc<RefServer> {
    let s = RefServer::open(config).unwrap();
    s.admin().seed_products(products).unwrap();
    s.admin().seed_persons(people).unwrap();
    s
}

/// The same shop, served over loopback HTTP.
fn served_shop(config: ServerConfig, products: usize, people: usize) -> RunningServer {
    let running = start(config);
    running.server().admin().seed_products(products).unwrap();
    running.server().admin().seed_persons(people).unwrap();
    running
}

fn shop(products: usize, people: usize) -> Arc<RefServer> {
    shop_with(mahak_server_config(), products, people)
}

/// The server ids of the server's first `n` products.
fn first_product_ids(admin: &rowsync_refserver::Admin<'_>, n: usize) -> Vec<i64> {
    admin
        .dump("products")
        .iter()
        .take(n)
        .map(|p| p["productId"].as_i64().expect("a product has its id"))
        .collect()
}

/// A product detail and a customer pulled into the replica.
fn pulled_ids(e: &Engine) -> (i64, i64) {
    let detail = local_all(e, "productDetails")[0]["productDetailId"]
        .as_i64()
        .expect("a pulled product detail has its id");
    let person = local_all(e, "people")[0]["personId"]
        .as_i64()
        .expect("a pulled person has its id");
    (detail, person)
}

/// A sale rung up at the till: an order of type 201 for `person`, with
/// `lines` lines on `detail`, one write group. Returns the order's client id.
fn sale(e: &Engine, person: i64, detail: i64, lines: usize) -> i64 {
    let visitor = e.session().unwrap().map_or(0, |s| s.visitor_id);
    e.write(|w| {
        let order = w.create(
            "orders",
            json!({"orderType": 201, "visitorId": visitor, "personId": person,
                   "orderDate": "2025-11-29T12:00:00", "description": "till 1"}),
        )?;
        let oc = client_id(&order, "order");
        for i in 0..lines {
            w.create(
                "orderDetails",
                json!({"orderClientId": oc, "productDetailId": detail, "count1": 1 + i, "price": 1_200_000}),
            )?;
        }
        Ok(oc)
    })
    .unwrap()
}

#[test]
fn login_sends_the_md5_and_keeps_the_session() {
    let server = start(mahak_server_config());
    server.server().admin().seed_products(3).unwrap();
    let db = TempDb::new("m-login");
    let e = mahak_engine(&db, &server.base_url());
    assert!(e.session().unwrap().is_none());
    e.sync().unwrap();
    let session = e.session().unwrap().expect("the login's session is kept");
    let config = server.server().config();
    assert_eq!(session.database_id, config.database_id);
    assert!(session.visitor_id > 0);
    assert!(!session.user_title.is_empty() && !session.server_time.is_empty());
    let status = e.status().unwrap();
    assert_eq!(status.session, Some(session.clone()));
    assert_eq!(status.dialect, rowsync::Dialect::Mahak);
    // Kept across a restart, never with the password or the token.
    drop(e);
    let e = mahak_engine(&db, &server.base_url());
    assert_eq!(e.session().unwrap(), Some(session));
    let raw = std::fs::read(&db.0).unwrap();
    let (user, pass) = config.users[0].clone();
    assert!(!user.is_empty());
    assert!(
        !raw.windows(pass.len()).any(|w| w == pass.as_bytes()),
        "the password is never stored"
    );
    // A wrong password is refused at once, without retries.
    let e2 = Engine::open(TempDb::new("m-login-bad").0.clone()).unwrap();
    e2.configure(mahak_settings(&server.base_url())).unwrap();
    let mut bad = credentials();
    bad.password = "wrong".into();
    e2.set_credentials(bad).unwrap();
    assert!(matches!(e2.sync(), Err(Error::AuthFailed { .. })));
}

#[test]
fn an_expired_jwt_is_renewed_before_the_call() {
    let mut config = mahak_server_config();
    config.token_ttl = Duration::from_secs(2);
    let server = shop_with(config, 5, 2);
    let db = TempDb::new("m-renew");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let logins = |s: &RefServer| {
        s.requests()
            .iter()
            .filter(|r| r.endpoint.eq_ignore_ascii_case("login"))
            .count()
    };
    assert_eq!(logins(&server), 1);
    e.sync().unwrap();
    assert_eq!(logins(&server), 1, "the token is still good");
    std::thread::sleep(Duration::from_millis(2_100));
    server.clear_requests();
    e.sync().unwrap();
    let refused = server
        .requests()
        .iter()
        .filter(|r| r.status == Some(401))
        .count();
    assert_eq!(logins(&server), 1, "renewed by its exp");
    assert_eq!(refused, 0, "before the server had to refuse it");
}

#[test]
fn a_paged_first_sync_with_an_inclusive_bound_pulls_everything_once() {
    let server = shop(2_345, 321);
    let db = TempDb::new("m-first");
    let e = engine_in_process(&db, &server);
    let mut s = e.settings().unwrap();
    s.page_size = 500;
    e.configure(s).unwrap();
    let report = e.sync().unwrap();
    let admin = server.admin();
    for c in ["products", "productDetails", "visitorProducts", "people"] {
        assert_eq!(
            e.count(c, true).unwrap() as usize,
            admin.count(c),
            "{c}: every record, once"
        );
    }
    assert_eq!(e.count("people", false).unwrap(), 321);
    assert!(report.pull_requests >= 5, "paged: {}", report.pull_requests);
    // The record at each checkpoint comes back (inclusive bound) and applies
    // as a no-op.
    let again = e.sync().unwrap();
    assert_eq!(again.applied(), 0);
    assert_eq!(again.pull_requests, 1);
    // Row versions above 2^32 from one counter.
    let cps: std::collections::HashMap<_, _> =
        e.status().unwrap().checkpoints.into_iter().collect();
    assert!(cps["products"] > 1 << 32 && cps["people"] > 1 << 32);
    // Persian text, trailing spaces and prices pass through unchanged.
    let server_detail = &admin.dump("productDetails")[0];
    let id = server_detail["productDetailId"].as_i64().unwrap();
    let local = e
        .get("productDetails", RecordId::Server(id))
        .unwrap()
        .unwrap();
    for (k, v) in server_detail.as_object().unwrap() {
        assert_eq!(&local[k], v, "field {k}");
    }
}

/// The page cap per collection or over the whole answer, a cap of the
/// server's own below the asked one, an exclusive bound, unordered records
/// and a server that ignores `pageSize`: the same replica every time.
#[test]
fn every_kind_of_page_cap_gives_the_same_replica() {
    type Habit = (&'static str, fn(&mut ServerConfig));
    let habits: [Habit; 5] = [
        ("total cap", |c| c.page_cap_total = true),
        ("server cap", |c| c.server_page_cap = Some(70)),
        ("exclusive bound", |c| c.exclusive_lower_bound = true),
        ("unordered", |c| c.unordered = true),
        ("no cap", |c| c.ignore_page_size = true),
    ];
    for (name, habit) in habits {
        let mut config = mahak_server_config();
        habit(&mut config);
        let server = shop_with(config, 333, 123);
        let db = TempDb::new("m-habit");
        let e = engine_in_process(&db, &server);
        let mut s = e.settings().unwrap();
        s.page_size = 100;
        e.configure(s).unwrap();
        e.sync().unwrap();
        let admin = server.admin();
        for c in [
            "products",
            "productDetails",
            "visitorProducts",
            "people",
            "visitorPeople",
        ] {
            assert_eq!(
                e.count(c, true).unwrap() as usize,
                admin.count(c),
                "{name}: {c}"
            );
        }
        // Changes after the first sync come with the next one.
        admin
            .delete(
                "people",
                admin.dump("people")[7]["personId"].as_i64().unwrap(),
            )
            .unwrap();
        let again = e.sync().unwrap();
        assert_eq!(again.collections["people"].deleted, 1, "{name}");
        assert_eq!(e.count("people", false).unwrap(), 122, "{name}");
    }
}

/// Under a small cap on the whole answer, the records an inclusive bound
/// sends again (one per collection already pulled) can fill an answer on
/// their own. That answer is no sign that the pull is over: every
/// collection still arrives whole, later changes come with the next sync,
/// and once the bound was seen inclusive, a sync with nothing new asks once
/// (from the checkpoints plus one), whichever way the bound falls.
#[test]
fn a_whole_answer_cap_filled_with_repeats_does_not_end_the_pull() {
    let collections = [
        "products",
        "productDetails",
        "visitorProducts",
        "people",
        "visitorPeople",
    ];
    for (cap, exclusive) in [(3, false), (5, false), (2, false), (3, true)] {
        let running = served_shop(
            ServerConfig {
                page_cap_total: true,
                server_page_cap: Some(cap),
                exclusive_lower_bound: exclusive,
                ..mahak_server_config()
            },
            20,
            10,
        );
        let admin = running.server().admin();
        let db = TempDb::new("m-cap-repeats");
        let e = mahak_engine(&db, &running.base_url());
        let what = format!("cap {cap}, exclusive bound {exclusive}");
        let first = e.sync().unwrap();
        for c in collections {
            assert_eq!(
                e.count(c, true).unwrap() as usize,
                admin.count(c),
                "{what}: {c}"
            );
        }
        // Changes made since come with the next sync.
        let ids = first_product_ids(&admin, 2);
        for id in &ids {
            let mut fields = serde_json::Map::new();
            fields.insert("name".into(), json!(format!("changed {id}")));
            admin.update_fields("products", *id, fields).unwrap();
        }
        admin.seed_persons(1).unwrap();
        let second = e.sync().unwrap();
        assert_eq!(second.collections["products"].applied, 2, "{what}");
        for c in collections {
            assert_eq!(
                e.count(c, true).unwrap() as usize,
                admin.count(c),
                "{what}: {c}"
            );
        }
        for id in &ids {
            let local = e.get("products", RecordId::Server(*id)).unwrap().unwrap();
            assert_eq!(local["name"], json!(format!("changed {id}")), "{what}");
        }
        // Nothing new: one request, and no record applied again.
        let idle = e.sync().unwrap();
        assert_eq!(
            idle.pull_requests, 1,
            "{what}: first sync took {}",
            first.pull_requests
        );
        assert_eq!(idle.applied(), 0, "{what}");
        running.stop();
    }
}

/// The Swagger's `OrderModel` has no `RowVersion`. Against a server that
/// answers orders without one, the pull still works for every collection:
/// orders are taken (at version 0), a sale is pushed, a change the server
/// makes to an order comes with the next sync, and nothing loops. Such a
/// collection cannot be paged (there is no version to ask from): it is
/// asked once more, alone and without a page size, after the rest.
#[test]
fn orders_answered_without_a_row_version_are_pulled_and_nothing_stops() {
    let running = served_shop(
        ServerConfig {
            versionless: vec!["orders".into()],
            ..mahak_server_config()
        },
        5,
        3,
    );
    let admin = running.server().admin();
    admin.seed_orders(4).unwrap();
    let db = TempDb::new("m-versionless");
    let e = mahak_engine(&db, &running.base_url());
    // Paged by 3: the other collections page on by their versions; orders,
    // which carry none to page by, are asked once more, alone and unpaged.
    let mut s = e.settings().unwrap();
    s.page_size = 3;
    e.configure(s).unwrap();
    e.sync().unwrap();
    let asked = running.server().requests();
    let last_pull = asked
        .iter()
        .rfind(|r| r.endpoint.eq_ignore_ascii_case("GetAllData"))
        .expect("pulls were made");
    assert_eq!(
        last_pull.counts,
        [("orders".to_string(), 4)],
        "the last request asks for orders alone, and all of them come"
    );
    for c in ["orders", "products", "people", "productDetails"] {
        assert_eq!(e.count(c, true).unwrap() as usize, admin.count(c), "{c}");
    }
    let (detail, person) = pulled_ids(&e);
    let oc = sale(&e, person, detail, 2);
    let report = e.sync().unwrap();
    assert_eq!(report.pushed, 3, "the sale and its lines");
    assert_eq!(admin.count("orders"), 5);
    let mine = e.get("orders", RecordId::Client(oc)).unwrap().unwrap();
    let mine = mine["orderId"].as_i64().expect("server id mapped");
    // The server changes one of its orders and ours (which the save gave a
    // version): the next sync brings both.
    let theirs = admin.dump("orders")[0]["orderId"].as_i64().unwrap();
    for id in [theirs, mine] {
        let mut fields = serde_json::Map::new();
        fields.insert(
            "description".into(),
            json!(format!("changed at the office {id}")),
        );
        admin.update_fields("orders", id, fields).unwrap();
    }
    let report = e.sync().unwrap();
    assert!(report.pull_requests <= 3, "{report:?}");
    for id in [theirs, mine] {
        let local = e.get("orders", RecordId::Server(id)).unwrap().unwrap();
        assert_eq!(local["description"], format!("changed at the office {id}"));
    }
    assert_eq!(e.count("orders", true).unwrap(), 5);
    // Nothing new: the sync ends, and nothing is pending or parked.
    let idle = e.sync().unwrap();
    assert!(idle.pull_requests <= 2, "{idle:?}");
    let counts = e.status().unwrap().counts;
    assert_eq!((counts.pending, counts.parked), (0, 0));
    running.stop();
}

/// `order_types` pulls only orders of those types (`orderTypes`, WIRE.md
/// section 3); widening it brings the others from the start, even those
/// older than the orders' checkpoint; lifting it brings all.
#[test]
fn order_types_filter_the_pulled_orders_and_widening_brings_the_rest() {
    let running = served_shop(mahak_server_config(), 5, 5);
    let admin = running.server().admin();
    admin.seed_orders(60).unwrap();
    let types_of = |orders: Vec<serde_json::Value>| {
        let mut t: Vec<i64> = orders
            .iter()
            .filter_map(|o| o["orderType"].as_i64())
            .collect();
        t.sort_unstable();
        t
    };
    let on_server = types_of(admin.dump("orders"));
    let mut kinds = on_server.clone();
    kinds.dedup();
    assert!(
        kinds.len() >= 2,
        "the seed made several order types: {kinds:?}"
    );
    let only = |wanted: &[i64]| -> Vec<i64> {
        on_server
            .iter()
            .copied()
            .filter(|t| wanted.contains(t))
            .collect()
    };
    let db = TempDb::new("m-order-types");
    let e = mahak_engine(&db, &running.base_url());
    let mut s = e.settings().unwrap();
    s.order_types = vec![kinds[0]];
    s.page_size = 7;
    e.configure(s).unwrap();
    e.sync().unwrap();
    assert_eq!(types_of(local_all(&e, "orders")), only(&kinds[..1]));
    // Widened: the orders of the added type come, although older than the
    // checkpoint the first sync left.
    let mut s = e.settings().unwrap();
    s.order_types = vec![kinds[1], kinds[0], kinds[1]];
    e.configure(s).unwrap();
    assert_eq!(e.settings().unwrap().order_types, kinds[..2].to_vec());
    e.sync().unwrap();
    assert_eq!(types_of(local_all(&e, "orders")), only(&kinds[..2]));
    // Lifted: every order.
    let mut s = e.settings().unwrap();
    s.order_types = Vec::new();
    e.configure(s).unwrap();
    e.sync().unwrap();
    assert_eq!(types_of(local_all(&e, "orders")), on_server);
    running.stop();
}

#[test]
fn an_incremental_sync_brings_updates_deletes_and_new_records() {
    let server = shop(200, 10);
    let db = TempDb::new("m-incr");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let admin = server.admin();
    let ids = first_product_ids(&admin, 2);
    let mut fields = serde_json::Map::new();
    fields.insert("name".into(), json!("چاي كيسه اي  "));
    admin.update_fields("products", ids[0], fields).unwrap();
    admin.delete("products", ids[1]).unwrap();
    admin
        .upsert(
            "products",
            json!({"productClientId": 0, "productCode": 9001, "name": "نو", "productCategoryId": null}),
        )
        .unwrap();
    let report = e.sync().unwrap();
    assert_eq!(report.collections["products"].applied, 3);
    assert_eq!(report.collections["products"].deleted, 1);
    assert_eq!(
        e.get("products", RecordId::Server(ids[0]))
            .unwrap()
            .unwrap()["name"],
        "چاي كيسه اي  "
    );
    assert!(e
        .get("products", RecordId::Server(ids[1]))
        .unwrap()
        .is_none());
    assert_eq!(e.count("products", false).unwrap(), 200);
}

#[test]
fn an_order_with_lines_is_pushed_and_its_ids_mapped() {
    let server = served_shop(mahak_server_config(), 20, 5);
    let db = TempDb::new("m-push");
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    let (detail, person) = pulled_ids(&e);
    let oc = sale(&e, person, detail, 3);
    assert_eq!(e.status().unwrap().counts.pending, 4);
    let report = e.sync().unwrap();
    assert_eq!(report.pushed, 4);
    assert_eq!(e.status().unwrap().counts.pending, 0);
    let order = e.get("orders", RecordId::Client(oc)).unwrap().unwrap();
    let oid = order["orderId"].as_i64().expect("server id mapped");
    assert!(report
        .id_mappings
        .contains(&("orders".to_string(), oc, oid)));
    let admin = server.server().admin();
    assert_eq!(admin.count("orders"), 1);
    assert_eq!(admin.count("orderDetails"), 3);
    for line in local_all(&e, "orderDetails") {
        assert_eq!(line["orderId"].as_i64(), Some(oid), "{line}");
        let id = line["orderDetailId"].as_i64().expect("line mapped");
        let s = admin.get("orderDetails", id).unwrap();
        assert_eq!(s["orderId"].as_i64(), Some(oid));
        assert_eq!(s["productDetailId"].as_i64(), Some(detail));
    }
    assert_eq!(
        admin.get("orders", oid).unwrap()["orderType"].as_i64(),
        Some(201)
    );
    // The echo of our own writes applies as a no-op.
    let echo = e.sync().unwrap();
    assert_eq!(echo.pushed, 0);
    assert!(e.conflicts().unwrap().is_empty());
    assert_eq!(local_all(&e, "orderDetails").len(), 3);
}

/// WIRE.md section 6: the order is saved, its line refused; the answer's
/// `Result` is false. The order is confirmed, the line parked with the
/// server's words; fixed and retried, it goes out linked to the order.
#[test]
fn a_partial_save_confirms_what_was_saved_and_parks_the_rest() {
    let server = shop(5, 2);
    let db = TempDb::new("m-partial");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let (detail, person) = pulled_ids(&e);
    let (oc, lc) = e
        .write(|w| {
            let order = w.create("orders", json!({"orderType": 201, "personId": person}))?;
            let oc = client_id(&order, "order");
            let line = w.create(
                "orderDetails",
                json!({"orderClientId": oc, "productId": 8_308_737, "count1": 1, "price": 1_200_000}),
            )?;
            Ok((oc, client_id(&line, "orderDetail")))
        })
        .unwrap();
    let report = e.sync().unwrap();
    assert_eq!((report.pushed, report.parked), (1, 1));
    let oid = e.get("orders", RecordId::Client(oc)).unwrap().unwrap()["orderId"]
        .as_i64()
        .expect("the saved order is confirmed");
    assert_eq!(server.admin().count("orders"), 1);
    assert_eq!(server.admin().count("orderDetails"), 0);
    let letters = e.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].message.trim(),
        "ProductDetailId or IncomeId or ExpenseId is required"
    );
    assert_eq!(
        letters[0].field.as_deref(),
        Some("IncomeId,ExpenseId,ProductDetailId")
    );
    // The fix, then the retry: the line goes out linked to the order.
    e.update(
        "orderDetails",
        RecordId::Client(lc),
        json!({"productDetailId": detail}),
    )
    .unwrap();
    e.retry_dead_letter(letters[0].id).unwrap();
    let report = e.sync().unwrap();
    assert_eq!(report.pushed, 1);
    let admin = server.admin();
    assert_eq!(admin.count("orders"), 1, "the order is never sent twice");
    let line = &admin.dump("orderDetails")[0];
    assert_eq!(line["orderId"].as_i64(), Some(oid));
    assert_eq!(e.status().unwrap().counts.pending, 0);
}

/// A save whose answer is lost after the server applied it, against both
/// server behaviours for a resent create: an "already registered" error (the
/// real server) and a silent update. Neither ends with a duplicate.
#[test]
fn a_lost_answer_then_a_resend_never_duplicates() {
    for silent_update in [false, true] {
        let mut config = mahak_server_config();
        config.resend_updates = silent_update;
        let server = shop_with(config, 5, 3);
        let db = TempDb::new("m-lost");
        let e = engine_in_process(&db, &server);
        e.sync().unwrap();
        let (detail, person) = pulled_ids(&e);
        let oc = sale(&e, person, detail, 2);
        server
            .faults()
            .inject(Some("SaveAllData"), Fault::LoseResponseAfterApply, 1);
        let report = e.sync().unwrap();
        assert_eq!(report.pushed, 3, "silent update: {silent_update}");
        let admin = server.admin();
        assert_eq!(admin.count("orders"), 1, "never twice ({silent_update})");
        assert_eq!(admin.count("orderDetails"), 2);
        let oid = e.get("orders", RecordId::Client(oc)).unwrap().unwrap()["orderId"]
            .as_i64()
            .expect("mapped by the reconciling pull");
        assert_eq!(admin.id_for_client("orders", oc), Some(oid));
        let st = e.status().unwrap().counts;
        assert_eq!((st.pending, st.parked, st.in_doubt), (0, 0, 0));
    }
}

/// A save's answer is lost, the pull that would reconcile it fails too,
/// then the app is killed: the creates stay in doubt across the restart,
/// and the next sync confirms them by a pull instead of sending them again.
#[test]
fn lost_answers_then_a_crash_then_a_reopen_send_once() {
    let server = shop(5, 3);
    let db = TempDb::new("m-crash");
    {
        let e = engine_in_process(&db, &server);
        e.sync().unwrap();
        let (detail, person) = pulled_ids(&e);
        sale(&e, person, detail, 1);
        let mut s = e.settings().unwrap();
        s.collections = vec!["products".into()];
        e.configure(s).unwrap();
        // The sync's own pull goes through; then the save's answer is lost,
        // and every pull after it is dropped.
        server
            .faults()
            .inject(None, Fault::Latency(Duration::ZERO), 2);
        server
            .faults()
            .inject(Some("SaveAllData"), Fault::LoseResponseAfterApply, 1);
        server
            .faults()
            .inject(Some("GetAllData"), Fault::DropBeforeResponse, 100);
        let err = e.sync().unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(e.status().unwrap().counts.in_doubt, 2);
        server.faults().clear();
    }
    let e = engine_in_process(&db, &server);
    assert_eq!(e.status().unwrap().counts.in_doubt, 2, "durable");
    server.clear_requests();
    e.sync().unwrap();
    let st = e.status().unwrap().counts;
    assert_eq!((st.pending, st.in_doubt), (0, 0));
    assert_eq!(server.admin().count("orders"), 1);
    assert_eq!(server.admin().count("orderDetails"), 1);
    let saves = server
        .requests()
        .iter()
        .filter(|r| r.endpoint.to_ascii_lowercase().starts_with("saveall"))
        .count();
    assert_eq!(saves, 0, "confirmed by the pull, never sent again");
}

/// Invariant 10 in the mahak dialect: the k-th call of a sync dies (before
/// or after the server applied it, or cut mid-body), the engine is dropped,
/// reopened and synced again: nothing lost, nothing doubled.
#[test]
fn killed_at_any_call_of_a_sync_nothing_is_lost_or_doubled() {
    for fault in [
        Fault::DropBeforeResponse,
        Fault::LoseResponseAfterApply,
        Fault::CutResponse,
    ] {
        for k in 0..10u32 {
            let server = shop(300, 20);
            let db = TempDb::new("m-kill");
            let mut orders = Vec::new();
            let person;
            {
                let e = engine_in_process(&db, &server);
                let mut s = e.settings().unwrap();
                s.page_size = 100;
                s.batch_size = 3;
                s.max_attempts = 1;
                e.configure(s).unwrap();
                e.sync().unwrap();
                let (detail, p) = pulled_ids(&e);
                person = p;
                for _ in 0..3 {
                    orders.push(sale(&e, person, detail, 2));
                }
                e.update(
                    "people",
                    RecordId::Server(person),
                    json!({"mobile": "09120000000"}),
                )
                .unwrap();
                server
                    .faults()
                    .inject(None, Fault::Latency(Duration::ZERO), k);
                server.faults().inject(None, fault, 1);
                let _ = e.sync();
                server.faults().clear();
            }
            let e = engine_in_process(&db, &server);
            e.sync().unwrap();
            let st = e.status().unwrap().counts;
            assert_eq!(
                (st.pending, st.parked, st.in_doubt),
                (0, 0, 0),
                "{fault:?} at call {k}"
            );
            let admin = server.admin();
            assert_eq!(admin.count("orders"), 3, "{fault:?} at call {k}");
            assert_eq!(admin.count("orderDetails"), 6, "{fault:?} at call {k}");
            assert_eq!(
                admin.get("people", person).unwrap()["mobile"],
                "09120000000"
            );
            for oc in &orders {
                let local = e.get("orders", RecordId::Client(*oc)).unwrap().unwrap();
                let id = local["orderId"].as_i64().expect("mapped");
                assert_eq!(admin.id_for_client("orders", *oc), Some(id));
            }
        }
    }
}

#[test]
fn another_visitor_at_login_stops_the_sync_and_changes_nothing() {
    let server = shop(10, 2);
    let db = TempDb::new("m-mismatch");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let (detail, person) = pulled_ids(&e);
    sale(&e, person, detail, 1);
    let before = (
        e.count("products", true).unwrap(),
        e.status().unwrap().counts.pending,
    );
    let visitor = e.session().unwrap().unwrap().visitor_id;
    server.admin().set_session_ids(None, Some(visitor + 1));
    // A new login: the engine reconnects as a fresh app start would.
    e.disconnect().unwrap();
    e.set_credentials(credentials()).unwrap();
    let err = e.sync().unwrap_err();
    assert!(
        matches!(&err, Error::ReplicaMismatch { what, replica, .. } if what == "visitorId" && *replica == visitor),
        "{err:?}"
    );
    assert_eq!(
        (
            e.count("products", true).unwrap(),
            e.status().unwrap().counts.pending
        ),
        before
    );
    assert_eq!(server.admin().count("orders"), 0, "nothing was pushed");
    // The app decides to wipe; then the replica fills from the new visitor.
    e.wipe(true).unwrap();
    e.sync().unwrap();
    assert_eq!(e.session().unwrap().unwrap().visitor_id, visitor + 1);
}

#[test]
fn the_dialect_of_a_replica_that_holds_data_cannot_be_switched() {
    let server = shop(3, 1);
    let db = TempDb::new("m-dialect");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let mut s = e.settings().unwrap();
    s.dialect = rowsync::Dialect::Documented;
    assert!(matches!(
        e.configure(s.clone()),
        Err(Error::DialectMismatch { .. })
    ));
    assert_eq!(e.settings().unwrap().dialect, rowsync::Dialect::Mahak);
    assert!(e.catalogue().unwrap().get("people").is_some());
    e.wipe(true).unwrap();
    e.configure(s).unwrap();
    assert!(e.catalogue().unwrap().get("persons").is_some());
    assert!(e.catalogue().unwrap().get("people").is_none());
}

/// A create the server already holds (sent by a save whose answer never
/// came, in an earlier life of the app) gets "already registered" when sent
/// again: the engine reconciles it by a pull instead of parking it.
#[test]
fn already_registered_is_reconciled_not_parked() {
    let server = shop(5, 2);
    let db = TempDb::new("m-already");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let person = e
        .create("people", json!({"Name": "مشتري تازه ", "Mobile": "0912"}))
        .unwrap();
    let pc = client_id(&person, "person");
    assert_eq!(
        person["name"], "مشتري تازه ",
        "PascalCase writes are stored in camelCase"
    );
    assert!(person.get("Name").is_none());
    // The server got it some other way (as a lost save would have left it);
    // the engine does not know.
    server
        .admin()
        .upsert(
            "people",
            json!({"personClientId": pc, "name": "مشتري تازه ", "mobile": "0912"}),
        )
        .unwrap();
    // Keep the pull from seeing it first: pull nothing but products.
    let mut s = e.settings().unwrap();
    s.collections = vec!["products".into()];
    e.configure(s).unwrap();
    let report = e.sync().unwrap();
    assert_eq!(report.parked, 0);
    assert!(e.dead_letters().unwrap().is_empty());
    assert_eq!(server.admin().count("people"), 3, "never twice");
    let local = e.get("people", RecordId::Client(pc)).unwrap().unwrap();
    assert_eq!(
        local["personId"].as_i64(),
        server.admin().id_for_client("people", pc)
    );
    assert_eq!(e.status().unwrap().counts.pending, 0);
}

/// Bad bytes from a server that speaks the mahak dialect: refused whole,
/// the store left as it was.
#[test]
fn bad_pages_leave_the_store_as_it_was() {
    let server = shop(20, 2);
    let db = TempDb::new("m-bad");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let snapshot = |e: &Engine| (local_all(e, "products"), e.status().unwrap().checkpoints);
    let before = snapshot(&e);
    let good = r#"{"ProductId":1,"ProductClientId":0,"Name":"ok","RowVersion":99999999999,"Deleted":false}"#;
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let pages = [
        "{not json".to_string(),
        "<html><body>Service Unavailable</body></html>".to_string(),
        format!(
            r#"{{"Result":true,"Data":{{"Objects":{{"Products":[{good},{{"Name":"no id","RowVersion":99999999999}}]}}}}}}"#
        ),
        format!(
            r#"{{"Result":true,"Data":{{"Objects":{{"Products":[{good},{{"ProductId":3,"RowVersion":-4}}]}}}}}}"#
        ),
        format!(
            r#"{{"Result":true,"Data":{{"Objects":{{"Products":[{good},{{"ProductId":"3","RowVersion":5}}]}}}}}}"#
        ),
        format!(
            r#"{{"Result":true,"Data":{{"Objects":{{"Products":[{good},{{"ProductId":4,"RowVersion":6,"X":{deep}}}]}}}}}}"#
        ),
        format!(r#"{{"Result":true,"Data":{{"Objects":{{"Products":{good}}}}}}}"#),
    ];
    for page in pages {
        e.set_transport(Arc::new(BadPages {
            inner: InProcessTransport::new(server.clone()),
            page: page.clone(),
        }))
        .unwrap();
        let err = e.sync().unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{page}: {err:?}");
        assert_eq!(snapshot(&e), before, "store untouched by {page}");
    }
}

/// Lands a record on the server (as a save sent by an earlier, killed
/// process would, late) just before the first save of this sync reaches it.
struct LateSave {
    inner: rowsync_refserver::InProcessTransport,
    server: Arc<RefServer>,
    record: std::sync::Mutex<Option<(String, serde_json::Value)>>,
}

impl rowsync::Transport for LateSave {
    fn send(
        &self,
        req: &rowsync::HttpRequest,
    ) -> Result<rowsync::HttpResponse, rowsync::TransportError> {
        if req.url.to_ascii_lowercase().ends_with("/sync/savealldata") {
            if let Some((collection, record)) = self.record.lock().unwrap().take() {
                self.server.admin().upsert(&collection, record).unwrap();
            }
        }
        self.inner.send(req)
    }
}

/// A create in doubt that the reconciling pull did not find (its save was
/// still on its way in the server) and that lands before the resend: the
/// server says "already registered", a second pull finds it, nothing is
/// parked and nothing is doubled.
#[test]
fn a_save_that_lands_after_the_reconciling_pull_is_not_parked() {
    let server = shop(5, 2);
    let db = TempDb::new("m-late");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let person = e
        .create("people", json!({"name": "دير رسيده ", "mobile": "0935"}))
        .unwrap();
    let pc = client_id(&person, "person");
    // The first save's connection drops before the server reads it: the
    // create is in doubt, and the reconciling pull shows it missing.
    server
        .faults()
        .inject(Some("SaveAllData"), Fault::DropBeforeResponse, 1);
    let late = Arc::new(LateSave {
        inner: rowsync_refserver::InProcessTransport::new(server.clone()),
        server: server.clone(),
        record: std::sync::Mutex::new(None),
    });
    // The drop happens on the first save; the record lands just before the
    // second one (the resend after the reconciling pull).
    struct Arm(
        Arc<LateSave>,
        serde_json::Value,
        std::sync::atomic::AtomicU32,
    );
    impl rowsync::Transport for Arm {
        fn send(
            &self,
            req: &rowsync::HttpRequest,
        ) -> Result<rowsync::HttpResponse, rowsync::TransportError> {
            let save = req.url.to_ascii_lowercase().ends_with("/sync/savealldata");
            if save && self.2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                *self.0.record.lock().unwrap() = Some(("people".to_string(), self.1.clone()));
            }
            self.0.send(req)
        }
    }
    e.set_transport(Arc::new(Arm(
        late.clone(),
        json!({"personClientId": pc, "name": "دير رسيده ", "mobile": "0935"}),
        std::sync::atomic::AtomicU32::new(0),
    )))
    .unwrap();
    let report = e.sync().unwrap();
    assert_eq!(report.parked, 0, "{:?}", e.dead_letters().unwrap());
    assert_eq!(server.admin().count("people"), 3, "never twice");
    let local = e.get("people", RecordId::Client(pc)).unwrap().unwrap();
    assert_eq!(
        local["personId"].as_i64(),
        server.admin().id_for_client("people", pc)
    );
    let st = e.status().unwrap().counts;
    assert_eq!((st.pending, st.in_doubt, st.dead_letters), (0, 0, 0));
}

/// Invariant 5 after a lost answer (found by the simulation, seed 1175): an
/// edit whose save was applied but never answered, then edited again, is
/// not a conflict with its own echo. The pull recognises the echo, and the
/// newer edit reaches the server; nothing is overridden or logged.
#[test]
fn an_edit_whose_answer_was_lost_then_edited_again_keeps_the_newer_edit() {
    let server = shop(3, 2);
    let db = TempDb::new("m-echo");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let (detail, person) = pulled_ids(&e);
    let oc = sale(&e, person, detail, 1);
    e.sync().unwrap();
    let id = e.get("orders", RecordId::Client(oc)).unwrap().unwrap()["orderId"]
        .as_i64()
        .unwrap();
    e.update(
        "orders",
        RecordId::Server(id),
        json!({"description": "edit 1"}),
    )
    .unwrap();
    // The pull passes, the save is applied and its answer lost, and then the
    // link dies: no pull shows the echo in this sync.
    let dying = Arc::new(DiesAfterSave {
        inner: InProcessTransport::new(server.clone()),
        dead: std::sync::atomic::AtomicBool::new(false),
        apply: true,
    });
    e.set_transport(dying).unwrap();
    assert!(e.sync().is_err(), "the answer was lost, then the link");
    e.set_transport(Arc::new(InProcessTransport::new(server.clone())))
        .unwrap();
    assert_eq!(
        server.admin().get("orders", id).unwrap()["description"],
        "edit 1"
    );
    e.update(
        "orders",
        RecordId::Server(id),
        json!({"description": "edit 2"}),
    )
    .unwrap();
    e.sync().unwrap();
    assert_eq!(
        server.admin().get("orders", id).unwrap()["description"],
        "edit 2"
    );
    let local = e.get("orders", RecordId::Server(id)).unwrap().unwrap();
    assert_eq!(local["description"], "edit 2");
    assert!(e.conflicts().unwrap().is_empty(), "no override was logged");
    let st = e.status().unwrap().counts;
    assert_eq!((st.pending, st.in_doubt, st.parked), (0, 0, 0));
}

/// The same with a delete after the lost answer (simulation seed 18232):
/// the echo of the edit is not a server update that beats the local delete.
#[test]
fn a_delete_after_an_edit_whose_answer_was_lost_is_kept() {
    let server = shop(3, 2);
    let db = TempDb::new("m-echo-del");
    let e = engine_in_process(&db, &server);
    e.sync().unwrap();
    let p = e
        .create("people", json!({"name": "مشتري", "mobile": "0912"}))
        .unwrap();
    let pc = client_id(&p, "person");
    e.sync().unwrap();
    let id = server.admin().id_for_client("people", pc).unwrap();
    e.update("people", RecordId::Server(id), json!({"mobile": "0935"}))
        .unwrap();
    e.set_transport(Arc::new(DiesAfterSave {
        inner: InProcessTransport::new(server.clone()),
        dead: std::sync::atomic::AtomicBool::new(false),
        apply: true,
    }))
    .unwrap();
    assert!(e.sync().is_err());
    e.set_transport(Arc::new(InProcessTransport::new(server.clone())))
        .unwrap();
    assert_eq!(server.admin().get("people", id).unwrap()["mobile"], "0935");
    e.delete("people", RecordId::Server(id)).unwrap();
    e.sync().unwrap();
    assert_eq!(server.admin().get("people", id).unwrap()["deleted"], true);
    assert!(e
        .get("people", RecordId::Server(id))
        .unwrap()
        .is_none_or(|r| r["deleted"] == true));
    assert!(e.conflicts().unwrap().is_empty(), "no override was logged");
}

/// A create whose save answer never came, deleted before the next sync
/// (simulation seed 33814): the delete is never sent as a create. If the
/// server got the create, the pull maps it and the delete follows; if not,
/// nothing is sent at all. Either way nothing is parked.
#[test]
fn a_create_in_doubt_then_deleted_is_never_sent_as_a_new_record() {
    for applied in [false, true] {
        let server = shop(3, 2);
        let db = TempDb::new("m-doubt-del");
        let e = engine_in_process(&db, &server);
        e.sync().unwrap();
        let p = e
            .create("people", json!({"name": "مشتري موقت", "mobile": "0912"}))
            .unwrap();
        let pc = client_id(&p, "person");
        e.set_transport(Arc::new(DiesAfterSave {
            inner: InProcessTransport::new(server.clone()),
            dead: std::sync::atomic::AtomicBool::new(false),
            apply: applied,
        }))
        .unwrap();
        assert!(e.sync().is_err());
        e.set_transport(Arc::new(InProcessTransport::new(server.clone())))
            .unwrap();
        assert_eq!(e.status().unwrap().counts.in_doubt, 1, "applied: {applied}");
        e.delete("people", RecordId::Client(pc)).unwrap();
        e.sync().unwrap();
        let st = e.status().unwrap().counts;
        assert_eq!(
            (st.pending, st.parked, st.in_doubt),
            (0, 0, 0),
            "applied: {applied}"
        );
        match server.admin().id_for_client("people", pc) {
            Some(id) => {
                assert!(applied);
                assert_eq!(server.admin().get("people", id).unwrap()["deleted"], true);
            }
            None => assert!(!applied, "the create reached the server"),
        }
        assert!(e
            .get("people", RecordId::Client(pc))
            .unwrap()
            .is_none_or(|r| r["deleted"] == true));
    }
}

/// Delivers every request until the first save, which the server applies
/// (or not, with `apply` false) but whose answer is lost; from then on the
/// link is dead.
struct DiesAfterSave {
    inner: InProcessTransport,
    dead: std::sync::atomic::AtomicBool,
    apply: bool,
}

impl rowsync::Transport for DiesAfterSave {
    fn send(
        &self,
        req: &rowsync::HttpRequest,
    ) -> Result<rowsync::HttpResponse, rowsync::TransportError> {
        use std::sync::atomic::Ordering;
        let dead = || rowsync::TransportError::new(rowsync::TransportErrorKind::Io, "dead link");
        if self.dead.load(Ordering::SeqCst) {
            return Err(dead());
        }
        if req.url.to_ascii_lowercase().contains("/sync/saveall") {
            if self.apply {
                let _ = self.inner.send(req)?;
            }
            self.dead.store(true, Ordering::SeqCst);
            return Err(dead());
        }
        self.inner.send(req)
    }
}

/// Whether the real server takes a date with an offset is not known
/// (WIRE.md section 8): the engine writes an app's `Z` or `+03:30` date as
/// the server writes dates (offset-free Tehran time, the same instant), so
/// a sale goes through whichever way it falls. Over loopback HTTP, against
/// a server that takes offsets and one that refuses them.
#[test]
fn an_app_date_with_an_offset_is_saved_whether_or_not_the_server_takes_offsets() {
    for refuse in [false, true] {
        let server = served_shop(
            ServerConfig {
                refuse_offset_dates: refuse,
                ..mahak_server_config()
            },
            3,
            2,
        );
        let db = TempDb::new("m-dates");
        let e = mahak_engine(&db, &server.base_url());
        e.sync().unwrap();
        let (detail, person) = pulled_ids(&e);
        let visitor = e.session().unwrap().map_or(0, |s| s.visitor_id);
        let order = e
            .create(
                "orders",
                json!({"orderType": 201, "visitorId": visitor, "personId": person,
                       "orderDate": "2026-12-05T10:00:00Z",
                       "DeliveryDate": "2026-12-06T09:15:30.25+03:30",
                       "description": "2026-12-05T10:00:00Z"}),
            )
            .unwrap();
        assert_eq!(order["orderDate"], "2026-12-05T13:30:00");
        assert_eq!(order["deliveryDate"], "2026-12-06T09:15:30.2500000");
        assert_eq!(
            order["description"], "2026-12-05T10:00:00Z",
            "not a date field"
        );
        let oc = client_id(&order, "order");
        e.create(
            "orderDetails",
            json!({"orderClientId": oc, "productDetailId": detail, "count1": 1, "price": 10}),
        )
        .unwrap();
        let report = e.sync().unwrap();
        assert_eq!((report.pushed, report.parked), (2, 0), "refuse: {refuse}");
        let stored = &server.server().admin().dump("orders")[0];
        assert_eq!(
            stored["orderDate"], "2026-12-05T13:30:00",
            "refuse: {refuse}"
        );
        let local = e.get("orders", RecordId::Client(oc)).unwrap().unwrap();
        assert_eq!(local["orderDate"], "2026-12-05T13:30:00");
        assert!(e.dead_letters().unwrap().is_empty());
    }
}
