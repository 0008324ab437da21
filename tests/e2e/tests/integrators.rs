//! What the integrators' own code shows about the real server (issue 25),
//! each habit of the reference server switched on and off, over loopback
//! HTTP: the password hashing per server, the order types (a field-sales
//! visitor's order is a 203, a shop's sale a 201, a delivery pre-invoice a
//! 299 that the delivery visitor pulls with `orderTypes: [299]` and delivers
//! as a 201), and a pull checkpoint that moves only on what a pull brought.

use rowsync::{Engine, Error, PasswordHash, RecordId};
use rowsync_e2e::*;
use rowsync_refserver::{RunningServer, ServerConfig};
use serde_json::json;
use serde_json::Value;

fn engine_hashing(db: &TempDb, server: &RunningServer, how: PasswordHash) -> Engine {
    let e = Engine::open(&db.0).unwrap();
    e.configure(rowsync::Settings {
        password_hash: how,
        ..mahak_settings(&server.base_url())
    })
    .unwrap();
    e.set_credentials(credentials()).unwrap();
    e
}

/// Issue 25.1: a server that takes the password plain refuses its MD5, and
/// the default (MD5) server refuses it plain; the setting picks the form.
/// Neither form is ever stored.
#[test]
fn the_password_is_hashed_as_the_server_wants_it() {
    for plain_server in [false, true] {
        let server = start(ServerConfig {
            plain_passwords: plain_server,
            ..mahak_server_config()
        });
        server.server().admin().seed_products(2).unwrap();
        for how in [PasswordHash::Md5, PasswordHash::Plain] {
            let db = TempDb::new("i-password");
            let e = engine_hashing(&db, &server, how);
            let result = e.sync();
            let right = (how == PasswordHash::Plain) == plain_server;
            if right {
                result.unwrap_or_else(|err| panic!("{how:?} on plain={plain_server}: {err}"));
                assert_eq!(local_all(&e, "products").len(), 2);
            } else {
                assert!(
                    matches!(result, Err(Error::AuthFailed { .. })),
                    "{how:?} on plain={plain_server}: {result:?}"
                );
            }
            drop(e);
            let raw = std::fs::read(&db.0).unwrap();
            assert_eq!(credentials().password, "pass1");
            for form in ["pass1", PASS1_MD5] {
                assert!(
                    !raw.windows(form.len()).any(|w| w == form.as_bytes()),
                    "no form of the password is stored"
                );
            }
        }
    }
}

/// The MD5 of the test user's password (`pass1`), as a server wants it.
const PASS1_MD5: &str = "a722c63db8ec8625af6cf71cb8c2d939";

/// Issue 25.4: the device saves an order while another client's order, at
/// a lower row version than the save answer's, is not pulled yet. The next
/// sync still brings that order: a save's row version is no pull checkpoint.
#[test]
fn a_save_answer_does_not_move_the_pull_checkpoint() {
    let server = start(mahak_server_config());
    let admin = server.server().admin();
    admin.seed_products(2).unwrap();
    admin.seed_persons(1).unwrap();
    let db = TempDb::new("i-checkpoint");
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    let person = local_all(&e, "people")[0]["personId"].as_i64().unwrap();
    // Another client's order reaches the server first (a lower version).
    let other = admin
        .upsert(
            "orders",
            json!({"orderType": 203, "personId": person, "orderClientId": 0,
                   "description": "another visitor"}),
        )
        .unwrap()["orderId"]
        .as_i64()
        .unwrap();
    // Ours is saved after it: its answer's RowVersion is above the other's.
    let mine = e
        .create("orders", json!({"orderType": 203, "personId": person}))
        .unwrap();
    let oc = client_id(&mine, "order");
    // The save goes out before any pull of orders in this sync.
    e.configure(rowsync::Settings {
        collections: vec!["products".into()],
        ..e.settings().unwrap()
    })
    .unwrap();
    e.sync().unwrap();
    assert!(e
        .get("orders", RecordId::Client(oc))
        .unwrap()
        .is_some_and(|o| o["orderId"].is_i64()));
    e.configure(rowsync::Settings {
        collections: Vec::new(),
        ..e.settings().unwrap()
    })
    .unwrap();
    e.sync().unwrap();
    assert!(
        e.get("orders", RecordId::Server(other)).unwrap().is_some(),
        "the other client's order, below our save's version, is pulled"
    );
}

/// A habit of the reference server, named, and how to switch it on.
type Habit = (&'static str, fn(&mut ServerConfig));

/// The pull habits of the reference server an orders pull meets (WIRE.md
/// section 3), each on its own, and none.
fn pull_habits() -> Vec<Habit> {
    vec![
        ("default habits", |_| {}),
        ("cap on the whole answer", |c| c.page_cap_total = true),
        ("server's own cap", |c| c.server_page_cap = Some(3)),
        ("exclusive bound", |c| c.exclusive_lower_bound = true),
        ("unordered", |c| c.unordered = true),
    ]
}

/// A shop served over HTTP under `habit`: products, people, and either the
/// seeded orders of every type (201 to 204 and 299, each with lines) or, the
/// seeding off, only two sales written in the desktop (without lines).
fn order_shop(habit: fn(&mut ServerConfig), seeded: bool) -> RunningServer {
    let mut config = mahak_server_config();
    habit(&mut config);
    let server = start(config);
    let admin = server.server().admin();
    admin.seed_products(6).unwrap();
    admin.seed_persons(4).unwrap();
    if seeded {
        admin.seed_orders(40).unwrap();
    } else {
        let person = admin.dump("people")[0]["personId"].clone();
        for n in 0..2 {
            admin
                .upsert(
                    "orders",
                    json!({"orderType": 201, "personId": person, "orderClientId": 0,
                           "description": format!("sale {n}")}),
                )
                .unwrap();
        }
    }
    server
}

/// An engine on `db` that pulls the orders of `types` only (every type when
/// empty), four records a page so that orders come over several pages.
fn engine_for_types(db: &TempDb, server: &RunningServer, types: &[i64]) -> Engine {
    let e = mahak_engine(db, &server.base_url());
    e.configure(rowsync::Settings {
        order_types: types.to_vec(),
        page_size: 4,
        ..e.settings().unwrap()
    })
    .unwrap();
    e
}

fn order_ids_of(orders: &[Value], types: &[i64]) -> Vec<i64> {
    let mut ids: Vec<i64> = orders
        .iter()
        .filter(|o| types.is_empty() || types.iter().any(|t| o["orderType"] == *t))
        .filter_map(|o| o["orderId"].as_i64())
        .collect();
    ids.sort_unstable();
    ids
}

/// Issue 25.2: `order_types` `[299]` pulls the delivery pre-invoices and no
/// other order, `[203]` the visitors' orders only (made by another client,
/// with its client ids: pulled as theirs, nothing of it queued to send),
/// and no filter every order; each pulled order with its lines. Under every
/// pull habit, with the typed orders seeded, and without them (a server
/// with sales only: `[299]` and `[203]` pull no order, and the sync ends).
#[test]
fn order_types_pull_the_pre_invoices_the_visitors_orders_or_all() {
    for (habit_name, habit) in pull_habits() {
        for seeded in [true, false] {
            let server = order_shop(habit, seeded);
            let admin = server.server().admin();
            let on_server = admin.dump("orders");
            let lines_on_server = admin.dump("orderDetails");
            if seeded {
                for t in [203, 299] {
                    assert!(order_ids_of(&on_server, &[t]).len() >= 2, "a few of {t}");
                }
            }
            for types in [vec![299], vec![203], vec![]] {
                let what = format!("{habit_name}, seeded {seeded}, order_types {types:?}");
                let db = TempDb::new("i-order-types");
                let e = engine_for_types(&db, &server, &types);
                let report = e.sync().unwrap_or_else(|err| panic!("{what}: {err}"));
                assert!(report.pull_requests < 100, "{what}: {report:?}");
                let local = local_all(&e, "orders");
                let expected = order_ids_of(&on_server, &types);
                assert_eq!(order_ids_of(&local, &[]), expected, "{what}");
                if !seeded && !types.is_empty() {
                    assert!(expected.is_empty(), "{what}: no order of these types");
                }
                // Each as the server holds it: its type, its client id (0
                // for the desktop's, the app's for a visitor's order) and
                // every one of its lines.
                let local_lines = local_all(&e, "orderDetails");
                for o in &local {
                    let id = o["orderId"].as_i64().unwrap();
                    let theirs = on_server.iter().find(|s| s["orderId"] == id).unwrap();
                    assert_eq!(o["orderType"], theirs["orderType"], "{what}");
                    assert_eq!(o["orderClientId"], theirs["orderClientId"], "{what}");
                    if o["orderType"] == 203 {
                        assert!(o["orderClientId"].as_i64().unwrap() > 0, "{what}: {o}");
                    }
                    let lines = |all: &[Value]| {
                        let mut ids: Vec<i64> = all
                            .iter()
                            .filter(|l| l["orderId"] == id)
                            .filter_map(|l| l["orderDetailId"].as_i64())
                            .collect();
                        ids.sort_unstable();
                        ids
                    };
                    let server_lines = lines(&lines_on_server);
                    assert!(
                        !seeded || !server_lines.is_empty(),
                        "{what}: order {id} has lines"
                    );
                    assert_eq!(lines(&local_lines), server_lines, "{what}: order {id}");
                }
                let counts = e.status().unwrap().counts;
                assert_eq!((counts.pending, counts.parked), (0, 0), "{what}");
                // Nothing new: the next sync brings nothing and sends nothing.
                let again = e.sync().unwrap();
                assert_eq!(again.collections.get("orders").map_or(0, |c| c.applied), 0);
                assert_eq!(again.push_requests, 0, "{what}");
            }
            server.stop();
        }
    }
}

/// Issue 25.2: a delivery visitor pulls its pre-invoices (`[299]`), delivers
/// one: writes the sale, a new order of type 201 for the same customer with
/// the pre-invoice's lines, and pushes it. The server holds it as a 201 for
/// the visitor, with those lines on its id; the pre-invoice is untouched;
/// the next sync sends nothing again and pulls no sale (the filter holds).
/// Under the default habits and under an exclusive bound with a cap on the
/// whole answer.
#[test]
fn a_delivered_pre_invoice_is_pushed_as_a_sale_the_server_holds_as_201() {
    let habits: [Habit; 2] = [
        ("default habits", |_| {}),
        ("exclusive bound, cap on the whole answer", |c| {
            c.exclusive_lower_bound = true;
            c.page_cap_total = true;
        }),
    ];
    for (what, habit) in habits {
        let server = order_shop(habit, true);
        let admin = server.server().admin();
        let db = TempDb::new("i-delivery");
        let e = engine_for_types(&db, &server, &[299]);
        e.sync().unwrap();
        let visitor = e.session().unwrap().unwrap().visitor_id;
        let pre = local_all(&e, "orders")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{what}: a pre-invoice pulled"));
        assert_eq!(pre["orderType"], 299, "{what}");
        let pre_id = pre["orderId"].as_i64().unwrap();
        let pre_lines: Vec<Value> = local_all(&e, "orderDetails")
            .into_iter()
            .filter(|l| l["orderId"] == pre_id)
            .collect();
        assert!(!pre_lines.is_empty(), "{what}: the pre-invoice's lines");
        let pre_on_server = admin.get("orders", pre_id).unwrap();

        // Delivered: the sale and its lines, one group.
        let sale = e
            .write(|w| {
                let sale = w.create(
                    "orders",
                    json!({"orderType": 201, "visitorId": visitor,
                           "personId": pre["personId"],
                           "description": format!("delivered {pre_id}")}),
                )?;
                for l in &pre_lines {
                    w.create(
                        "orderDetails",
                        json!({"orderClientId": sale["orderClientId"],
                               "productDetailId": l["productDetailId"],
                               "count1": l["count1"], "price": l["price"]}),
                    )?;
                }
                Ok(sale)
            })
            .unwrap();
        let sale_cid = client_id(&sale, "order");
        let report = e.sync().unwrap();
        assert_eq!(
            report.pushed,
            1 + pre_lines.len() as u64,
            "{what}: {report:?}"
        );
        assert_eq!(report.parked, 0, "{what}");
        let sale_id = report
            .id_mappings
            .iter()
            .find(|(c, cid, _)| c == "orders" && *cid == sale_cid)
            .map(|m| m.2)
            .unwrap_or_else(|| panic!("{what}: the sale got its id: {report:?}"));

        // The server holds it as a 201 of the visitor, with the lines.
        let held = admin.get("orders", sale_id).unwrap();
        assert_eq!(held["orderType"], 201, "{what}: {held}");
        assert_eq!(held["orderClientId"], sale_cid, "{what}");
        assert_eq!(held["visitorId"], visitor, "{what}");
        assert_eq!(held["personId"], pre["personId"], "{what}");
        let mut held_lines: Vec<(Value, String, String)> = admin
            .dump("orderDetails")
            .into_iter()
            .filter(|l| l["orderId"] == sale_id)
            .map(|l| {
                let n = |k: &str| l[k].as_f64().unwrap_or(f64::NAN).to_string();
                (l["productDetailId"].clone(), n("count1"), n("price"))
            })
            .collect();
        let mut sent_lines: Vec<(Value, String, String)> = pre_lines
            .iter()
            .map(|l| {
                let n = |k: &str| l[k].as_f64().unwrap_or(f64::NAN).to_string();
                (l["productDetailId"].clone(), n("count1"), n("price"))
            })
            .collect();
        let key = |t: &(Value, String, String)| format!("{t:?}");
        held_lines.sort_by_key(key);
        sent_lines.sort_by_key(key);
        assert_eq!(held_lines, sent_lines, "{what}: the sale's lines");
        // The pre-invoice is as the desktop wrote it.
        assert_eq!(
            admin.get("orders", pre_id).unwrap(),
            pre_on_server,
            "{what}"
        );
        let local_sale = e
            .get("orders", RecordId::Client(sale_cid))
            .unwrap()
            .unwrap();
        assert_eq!(local_sale["orderId"], sale_id, "{what}");
        assert_eq!(local_sale["orderType"], 201, "{what}");

        // Nothing is sent again; the filter still pulls 299s only, so the
        // shop's other sales stay on the server.
        let again = e.sync().unwrap();
        assert_eq!((again.push_requests, again.pending), (0, 0), "{what}");
        let types: Vec<i64> = local_all(&e, "orders")
            .iter()
            .filter(|o| o["orderId"] != sale_id)
            .filter_map(|o| o["orderType"].as_i64())
            .collect();
        assert!(types.iter().all(|&t| t == 299), "{what}: {types:?}");
        server.stop();
    }
}
