//! Live queries over loopback HTTP (issue 26.1): ten queries watch a
//! replica of the reference server (mahak dialect) while 1,000 local writes
//! and a sync happen at once. Each query's last result is what a direct
//! read gives at the end, and a query of a collection nobody touched never
//! ran again after its first result. A conflict resolved inside a push
//! reaches the watch too.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rowsync::{Query, QueryListener, RecordId};
use rowsync_e2e::*;
use serde_json::{json, Value};

/// A guard against a hang, not a timing assertion.
const GUARD: Duration = Duration::from_secs(120);

struct Results(Mutex<Sender<Vec<Value>>>);

impl QueryListener for Results {
    fn on_result(&self, records: &[Value]) {
        let _ = self.0.lock().unwrap().send(records.to_vec());
    }

    fn on_error(&self, error: &rowsync::Error) {
        panic!("a live query failed: {error}");
    }
}

/// The last result `rx` holds (`first` if it holds none), and how many.
fn last(rx: &Receiver<Vec<Value>>, first: Vec<Value>) -> (Vec<Value>, usize) {
    let mut out = (first, 0);
    while let Ok(r) = rx.try_recv() {
        out = (r, out.1 + 1);
    }
    out
}

#[test]
fn ten_queries_see_their_final_result_and_untouched_ones_never_run_again() {
    let server = start(mahak_server_config());
    let admin = server.server().admin();
    admin.seed_products(40).unwrap();
    admin.seed_persons(10).unwrap();
    let db = TempDb::new("live");
    let e = Arc::new(mahak_engine(&db, &server.base_url()));
    e.sync().unwrap();
    let visitor = e.session().unwrap().map_or(0, |s| s.visitor_id);
    let people: Vec<i64> = local_all(&e, "people")
        .iter()
        .map(|p| p["personId"].as_i64().unwrap())
        .collect();
    let detail = local_all(&e, "productDetails")[0]["productDetailId"]
        .as_i64()
        .unwrap();
    let product = local_all(&e, "products")[0]["productId"].as_i64().unwrap();
    let queries = [
        Query::new("orders")
            .filter("orderType", 201)
            .order_by_desc("orderClientId")
            .limit(50),
        Query::new("orders").filter("personId", people[0]),
        Query::new("orderDetails").order_by("count1").limit(100),
        Query::new("people").order_by("credit"),
        Query::new("people")
            .filter("personGroupId", 2)
            .order_by_desc("credit"),
        Query::new("products")
            .filter("productCategoryId", 1)
            .order_by("name"),
        Query::new("products").order_by_desc("productId").limit(5),
        Query::new("banks"),
        Query::new("cheques").order_by("chequeCode"),
        Query::new("checklists").filter("personId", people[0]),
    ];
    let untouched = ["banks", "cheques", "checklists"];
    let mut watches = Vec::new();
    for q in &queries {
        let (tx, rx) = channel();
        let w = e.watch(q, Arc::new(Results(Mutex::new(tx)))).unwrap();
        let first = rx.recv_timeout(GUARD).expect("a first result at once");
        assert_eq!(first, e.query(q).unwrap(), "{q:?}");
        watches.push((q, w, rx, first));
    }

    // The desktop changes a product; the sync below brings it.
    let mut fields = serde_json::Map::new();
    fields.insert("name".into(), json!("AAA first now"));
    admin.update_fields("products", product, fields).unwrap();

    // 1,000 writes: 300 sales of an order and its line (600), and 400
    // edits of customers, while a sync runs beside them.
    let writer = {
        let e = e.clone();
        let people = people.clone();
        std::thread::spawn(move || {
            for i in 0..300_i64 {
                e.write(|w| {
                    let order = w.create(
                        "orders",
                        json!({"orderType": 201, "visitorId": visitor,
                               "personId": people[(i % 3) as usize],
                               "orderDate": "2025-11-29T12:00:00"}),
                    )?;
                    let oc = client_id(&order, "order");
                    w.create(
                        "orderDetails",
                        json!({"orderClientId": oc, "productDetailId": detail,
                               "count1": 1 + i % 7, "price": 1_200_000}),
                    )
                })
                .unwrap();
            }
            for i in 0..400_i64 {
                let p = people[(i % people.len() as i64) as usize];
                e.update("people", RecordId::Server(p), json!({"credit": i * 1_000}))
                    .unwrap();
            }
        })
    };
    let syncer = {
        let e = e.clone();
        std::thread::spawn(move || e.sync().map(|_| ()))
    };
    writer.join().unwrap();
    syncer.join().unwrap().unwrap();

    // A barrier: the thread runs queries in the order they were watched,
    // all marked ones at once, so when this new one has its first result,
    // every run the writes above called for is over.
    let (tx, barrier) = channel();
    let _barrier = e
        .watch(&Query::new("banks"), Arc::new(Results(Mutex::new(tx))))
        .unwrap();
    barrier
        .recv_timeout(GUARD)
        .expect("the barrier's first result");
    for (q, w, rx, first) in watches.iter_mut() {
        let (got, deliveries) = last(rx, std::mem::take(first));
        assert_eq!(
            got,
            e.query(q).unwrap(),
            "{q:?}: the last result is the final one"
        );
        eprintln!(
            "{} {:?}: {} runs, {deliveries} results after the first",
            q.collection,
            q.filters,
            w.runs()
        );
        if untouched.contains(&q.collection.as_str()) {
            assert_eq!(w.runs(), 1, "{q:?} ran again");
        }
    }
    // The direct reads agree with what was written and pulled.
    let sales = e
        .query(&Query::new("orders").filter("orderType", 201).limit(1_000))
        .unwrap();
    assert_eq!(sales.len(), 300);
    let top = e
        .query(
            &Query::new("products")
                .filter("productCategoryId", 1)
                .order_by("name"),
        )
        .unwrap();
    assert_eq!(top[0]["name"], "AAA first now");
    for (_, w, rx, _) in &watches {
        w.cancel();
        e.create("banks", json!({"name": "after cancel"})).unwrap();
        assert!(rx.try_recv().is_err());
    }
}

/// A save answered 2002 with the server's record is resolved inside the
/// push, with no pull of that collection: the watch of it shows the
/// server's version (money: server wins).
#[test]
fn a_2002_resolved_in_the_push_reaches_the_watch() {
    let server = start(server_config());
    let admin = server.server().admin();
    admin
        .upsert(
            "payments",
            json!({"paymentId": 1, "paymentClientId": 0, "amount": 1000, "note": "cash"}),
        )
        .unwrap();
    let db = TempDb::new("live-2002");
    let e = engine(&db, &server.base_url());
    e.sync().unwrap();
    // Stop pulling payments, so the push meets the newer version as a 2002.
    let mut s = e.settings().unwrap();
    s.collections = vec!["products".into()];
    e.configure(s).unwrap();
    let q = Query::new("payments");
    let (tx, rx) = channel();
    let _w = e.watch(&q, Arc::new(Results(Mutex::new(tx)))).unwrap();
    let first = rx.recv_timeout(GUARD).unwrap();
    e.update("payments", RecordId::Server(1), json!({"note": "local"}))
        .unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert("note".into(), json!("office"));
    admin.update_fields("payments", 1, fields).unwrap();
    let r = e.sync().unwrap();
    assert_eq!(r.conflicts, 1);
    let now = e.query(&q).unwrap();
    assert_eq!(now[0]["note"], "office", "money stays the server's");
    let (tx, barrier) = channel();
    let _b = e
        .watch(&Query::new("banks"), Arc::new(Results(Mutex::new(tx))))
        .unwrap();
    barrier.recv_timeout(GUARD).unwrap();
    assert_eq!(last(&rx, first).0, now, "the watch shows the resolution");
}
