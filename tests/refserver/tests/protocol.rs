//! The wire contract, in-process: login, tokens, pull, save, error codes.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{body, expect, server, server_with, Client};
use rowsync_refserver::{RefServer, ServerConfig};
use serde_json::{json, Value};

#[test]
fn login_v2_and_legacy_login_issue_tokens() {
    let s = server();
    let c = Client::in_process(&s);
    for name in ["LoginV2", "Login"] {
        let r = c
            .raw(
                name,
                json!({"username":"user1","password":"pass1","databaseId":1001,"packageNumber":2002})
                    .to_string()
                    .into_bytes(),
                None,
            )
            .unwrap();
        let v = expect(&r, 200, 0);
        assert!(v["data"]["token"].as_str().unwrap().len() > 20);
        let exp = v["data"]["expireDate"].as_str().unwrap();
        let exp = chrono::DateTime::parse_from_rfc3339(exp).unwrap();
        let left = exp.timestamp() - chrono::Utc::now().timestamp();
        assert!((3500..=3601).contains(&left), "{left}");
    }
}

#[test]
fn login_errors_1001_1002_and_malformed() {
    let s = server();
    let c = Client::in_process(&s);
    let send = |b: Value| c.raw("LoginV2", b.to_string().into_bytes(), None).unwrap();
    let ok = json!({"username":"user1","password":"pass1","databaseId":1001,"packageNumber":2002});
    let mut bad_db = ok.clone();
    bad_db["databaseId"] = json!(9);
    expect(&send(bad_db), 401, 1001);
    let mut bad_pkg = ok.clone();
    bad_pkg["packageNumber"] = json!(1);
    expect(&send(bad_pkg), 401, 1001);
    let mut bad_pass = ok.clone();
    bad_pass["password"] = json!("nope");
    expect(&send(bad_pass), 401, 1002);
    let mut bad_user = ok.clone();
    bad_user["username"] = json!("mallory");
    expect(&send(bad_user), 401, 1002);
    expect(
        &c.raw("LoginV2", b"{not json".to_vec(), None).unwrap(),
        400,
        3001,
    );
    expect(
        &c.raw("LoginV2", b"[1,2]".to_vec(), None).unwrap(),
        400,
        3001,
    );
}

#[test]
fn bare_login_answers_without_envelope() {
    let s = server_with(|c| c.bare_login = true);
    let c = Client::in_process(&s);
    let r = c.login_as("user1", "pass1");
    let v = body(&r);
    assert_eq!(r.status, 200);
    assert!(v.get("success").is_none());
    assert!(v["token"].is_string() && v["expireDate"].is_string());
    // The legacy login keeps the envelope; the token works.
    let c = c.login();
    expect(
        &c.post("GetAllDataV2", json!({"banksRowVersion": 0})),
        200,
        0,
    );
}

#[test]
fn calls_need_a_valid_unexpired_token() {
    let s = server_with(|c| c.token_ttl = Duration::from_millis(300));
    let mut c = Client::in_process(&s);
    let req = json!({"banksRowVersion": 0});
    expect(&c.post("GetAllDataV2", req.clone()), 401, 1003);
    c.token = Some("not.a.jwt".into());
    expect(&c.post("GetAllDataV2", req.clone()), 401, 1003);
    let c = c.login();
    expect(&c.post("GetAllDataV2", req.clone()), 200, 0);
    std::thread::sleep(Duration::from_millis(400));
    let v = expect(&c.post("GetAllDataV2", req.clone()), 401, 1003);
    assert!(v["message"].as_str().unwrap().contains("expired"));
    // A token signed with another secret is refused.
    let other = server_with(|c| c.jwt_secret = "other".into());
    let mut c2 = Client::in_process(&other).login();
    c2.transport = Client::in_process(&s).transport;
    expect(&c2.post("GetAllDataV2", req), 401, 1003);
}

#[test]
fn every_response_has_a_unique_tracking_id() {
    let s = server();
    let c = Client::in_process(&s).login();
    let mut ids = HashSet::new();
    for _ in 0..20 {
        let r = c.post("GetAllDataV2", json!({"ordersRowVersion": 0}));
        assert!(ids.insert(r.tracking_id().unwrap().to_string()));
    }
    let r = c.raw("Nope", vec![], None).unwrap();
    assert_eq!(r.status, 404);
    assert!(ids.insert(r.tracking_id().unwrap().to_string()));
    let log = s.requests();
    assert!(log.len() >= 22);
    assert!(log
        .iter()
        .any(|e| e.endpoint == "GetAllDataV2" && e.status == Some(200)));
}

fn seed_orders(s: &RefServer, n: usize) {
    let p = s
        .admin()
        .upsert("persons", json!({"name": "Customer", "personCode": "C1"}))
        .unwrap();
    let recs: Vec<Value> = (0..n)
        .map(|i| json!({"customerId": p["personId"], "totalAmount": i * 10, "note": format!("o{i}")}))
        .collect();
    s.admin().seed("orders", recs).unwrap();
}

#[test]
fn pull_pages_ascending_with_has_more_and_resume() {
    let s = server();
    seed_orders(&s, 23);
    let deleted = s.admin().delete("orders", 3).unwrap();
    let c = Client::in_process(&s).login();
    let mut after = 0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let v = expect(
            &c.post(
                "GetAllDataV2",
                json!({"ordersRowVersion": after, "pageSize": 5}),
            ),
            200,
            0,
        );
        let e = &v["data"]["orders"];
        let recs = e["records"].as_array().unwrap();
        assert!(recs.len() <= 5);
        let rvs: Vec<i64> = recs
            .iter()
            .map(|r| r["rowVersion"].as_i64().unwrap())
            .collect();
        assert!(rvs.windows(2).all(|w| w[0] < w[1]), "ascending");
        assert!(rvs.iter().all(|&rv| rv > after));
        pages += 1;
        seen.extend(recs.iter().cloned());
        let rv = e["rowVersion"].as_i64().unwrap();
        if e["hasMore"] == json!(true) {
            assert_eq!(rv, *rvs.last().unwrap());
        } else {
            assert_eq!(rv, s.admin().counter());
            after = rv;
            break;
        }
        after = rv;
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23);
    let tomb = seen.iter().find(|r| r["orderId"] == 3).unwrap();
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["rowVersion"], deleted["rowVersion"]);
    // Nothing new: empty records, checkpoint = counter.
    let v = expect(
        &c.post(
            "GetAllDataV2",
            json!({"ordersRowVersion": after, "banksRowVersion": 0}),
        ),
        200,
        0,
    );
    assert_eq!(v["data"]["orders"]["records"], json!([]));
    assert_eq!(v["data"]["banks"]["records"], json!([]));
    assert_eq!(v["data"]["orders"]["hasMore"], false);
    // Without pageSize everything comes at once.
    let v = expect(
        &c.post(
            "GetAllDataV2",
            json!({"ordersRowVersion": 0, "personsRowVersion": 0}),
        ),
        200,
        0,
    );
    assert_eq!(v["data"]["orders"]["records"].as_array().unwrap().len(), 23);
    assert_eq!(v["data"]["persons"]["records"].as_array().unwrap().len(), 1);
}

#[test]
fn pull_rejects_bad_requests_with_3001() {
    let s = server();
    let c = Client::in_process(&s).login();
    for bad in [
        json!({"ghostsRowVersion": 0}),
        json!({"ordersRowVersion": "x"}),
        json!({"ordersRowVersion": -1}),
        json!({"ordersRowVersion": 0, "pageSize": 0}),
        json!({"ordersRowVersion": 0, "pageSize": 5001}),
        json!({"ordersRowVersion": 0, "pageSize": "10"}),
        json!([1]),
    ] {
        let v = expect(&c.post("GetAllDataV2", bad.clone()), 400, 3001);
        assert!(!v["message"].as_str().unwrap().is_empty(), "{bad}");
    }
    let r = c
        .raw("GetAllDataV2", b"{oops".to_vec(), c.token.as_deref())
        .unwrap();
    expect(&r, 400, 3001);
    // Unknown non-checkpoint fields are tolerated.
    expect(
        &c.post(
            "GetAllDataV2",
            json!({"ordersRowVersion": 0, "extra": true}),
        ),
        200,
        0,
    );
}

fn new_order(client_id: i64, customer: Value) -> Value {
    json!({"orderId": null, "orderClientId": client_id, "customerId": customer,
           "totalAmount": 95000, "deleted": false, "rowVersion": null,
           "futureField": {"kept": [1, 2]}})
}

fn customer(s: &RefServer) -> i64 {
    s.admin()
        .upsert("persons", json!({"name": "Cust", "personCode": "C9"}))
        .unwrap()["personId"]
        .as_i64()
        .unwrap()
}

#[test]
fn save_inserts_assigns_ids_and_keeps_unknown_fields() {
    let s = server();
    let cust = customer(&s);
    let product = s
        .admin()
        .upsert("products", json!({"name": "Tea", "price": 47500}))
        .unwrap();
    let c = Client::in_process(&s).login();
    let before = s.admin().counter();
    let v = expect(
        &c.post(
            "SaveAllDataV2",
            json!({
                "orderDetails": [{"orderDetailId": null, "orderDetailClientId": 7001, "orderClientId": 100,
                                  "productId": product["productId"], "quantity": 2, "unitPrice": 47500}],
                "orders": [new_order(100, json!(cust))],
            }),
        ),
        200,
        0,
    );
    let o = &v["data"]["orders"][0];
    assert_eq!(o["orderClientId"], 100);
    let order_id = o["orderId"].as_i64().unwrap();
    assert_eq!(o["rowVersion"], before + 1, "parents first");
    let d = &v["data"]["orderDetails"][0];
    assert_eq!(d["orderDetailClientId"], 7001);
    assert_eq!(d["rowVersion"], before + 2);
    let detail = s
        .admin()
        .get("orderDetails", d["orderDetailId"].as_i64().unwrap())
        .unwrap();
    assert_eq!(
        detail["orderId"], order_id,
        "parent server id stored in the child"
    );
    let order = s.admin().get("orders", order_id).unwrap();
    assert_eq!(order["futureField"], json!({"kept": [1, 2]}));
    assert_eq!(order["rowVersion"], before + 1);
    assert_eq!(s.admin().counter(), before + 2);
    // The pull echoes them with the unknown field.
    let p = expect(
        &c.post("GetAllDataV2", json!({"ordersRowVersion": before})),
        200,
        0,
    );
    assert_eq!(
        p["data"]["orders"]["records"][0]["futureField"]["kept"][1],
        2
    );
}

#[test]
fn same_save_twice_is_idempotent() {
    let s = server();
    let cust = customer(&s);
    let c = Client::in_process(&s).login();
    let req = json!({"orders": [new_order(555, json!(cust))],
                     "orderDetails": [{"orderDetailClientId": 9, "orderClientId": 555, "quantity": 1}]});
    let a = expect(&c.post("SaveAllDataV2", req.clone()), 200, 0);
    let b = expect(&c.post("SaveAllDataV2", req), 200, 0);
    assert_eq!(
        a["data"]["orders"][0]["orderId"],
        b["data"]["orders"][0]["orderId"]
    );
    assert_eq!(
        a["data"]["orderDetails"][0]["orderDetailId"],
        b["data"]["orderDetails"][0]["orderDetailId"]
    );
    assert!(
        b["data"]["orders"][0]["rowVersion"].as_i64()
            > a["data"]["orders"][0]["rowVersion"].as_i64()
    );
    assert_eq!(s.admin().count("orders"), 1);
    assert_eq!(s.admin().count("orderDetails"), 1);
    // The same client id twice in one request is one record too.
    let v = expect(
        &c.post(
            "SaveAllDataV2",
            json!({"orders": [new_order(777, json!(cust)), new_order(777, json!(cust))]}),
        ),
        200,
        0,
    );
    assert_eq!(
        v["data"]["orders"][0]["orderId"],
        v["data"]["orders"][1]["orderId"]
    );
    assert_eq!(s.admin().count("orders"), 2);
}

#[test]
fn updates_deletes_and_conflicts_2002_with_server_record() {
    let s = server();
    let cust = customer(&s);
    let c = Client::in_process(&s).login();
    let v = expect(
        &c.post(
            "SaveAllDataV2",
            json!({"orders": [new_order(1, json!(cust))]}),
        ),
        200,
        0,
    );
    let id = v["data"]["orders"][0]["orderId"].as_i64().unwrap();
    let rv = v["data"]["orders"][0]["rowVersion"].as_i64().unwrap();
    // Update with the current version: fine; partial records merge.
    let v = expect(
        &c.post("SaveAllDataV2", json!({"orders": [{"orderId": id, "orderClientId": 1, "totalAmount": 5, "rowVersion": rv}]})),
        200,
        0,
    );
    let rv2 = v["data"]["orders"][0]["rowVersion"].as_i64().unwrap();
    let stored = s.admin().get("orders", id).unwrap();
    assert_eq!(stored["totalAmount"], 5);
    assert_eq!(stored["futureField"]["kept"][0], 1);
    // The desktop changes it meanwhile.
    s.admin()
        .update_fields(
            "orders",
            id,
            json!({"totalAmount": 6}).as_object().unwrap().clone(),
        )
        .unwrap();
    let server_now = s.admin().get("orders", id).unwrap();
    let before = s.admin().state();
    let v = expect(
        &c.post("SaveAllDataV2", json!({"orders": [{"orderId": id, "orderClientId": 1, "totalAmount": 7, "rowVersion": rv2}]})),
        400,
        2002,
    );
    let e = &v["data"]["errors"][0];
    assert_eq!(e["code"], 2002);
    assert_eq!(e["entity"], "orders");
    assert_eq!(e["id"], id);
    assert_eq!(e["clientId"], 1);
    assert_eq!(e["serverRecord"], server_now);
    assert_eq!(s.admin().state(), before, "nothing applied");
    // Null rowVersion: no check. Delete logically.
    expect(
        &c.post(
            "SaveAllDataV2",
            json!({"orders": [{"orderId": id, "deleted": true, "rowVersion": null}]}),
        ),
        200,
        0,
    );
    let stored = s.admin().get("orders", id).unwrap();
    assert_eq!(stored["deleted"], true);
    assert_eq!(stored["totalAmount"], 6);
    // Unknown server id: 2001.
    let v = expect(
        &c.post(
            "SaveAllDataV2",
            json!({"orders": [{"orderId": 999, "orderClientId": 3}]}),
        ),
        400,
        2001,
    );
    assert_eq!(v["data"]["errors"][0]["field"], "orderId");
}

#[test]
fn every_failing_record_is_listed_and_nothing_is_applied() {
    let s = server();
    let cust = customer(&s);
    let c = Client::in_process(&s).login();
    let before = s.admin().state();
    let counter = s.admin().counter();
    let v = expect(
        &c.post(
            "SaveAllDataV2",
            json!({
                "orders": [new_order(1, json!(cust)), new_order(2, json!(4242)), new_order(3, json!(cust))],
                "orderDetails": [
                    {"orderDetailClientId": 10, "orderClientId": 1, "quantity": 0},
                    {"orderDetailClientId": 11, "orderClientId": 2, "quantity": 1},
                    {"orderDetailClientId": 12, "orderClientId": 3, "quantity": 1, "productId": 31337},
                    {"orderDetailClientId": 13, "orderClientId": 1, "quantity": 1},
                    {"orderDetailClientId": 14, "quantity": 1},
                ],
                "products": [{"productClientId": 5, "name": ""}, {"productClientId": 6, "name": "ok", "price": -1}],
                "persons": [{"personClientId": 7}, "not an object", {"personClientId": "x", "name": "n"}],
                "payments": [{"paymentClientId": 8, "amount": 10, "deleted": "yes"}],
            }),
        ),
        400,
        2001,
    );
    let errors = v["data"]["errors"].as_array().unwrap();
    let summary: Vec<(String, Value, i64, Value)> = errors
        .iter()
        .map(|e| {
            (
                e["entity"].as_str().unwrap().to_string(),
                e["clientId"].clone(),
                e["code"].as_i64().unwrap(),
                e["field"].clone(),
            )
        })
        .collect();
    let expected = vec![
        ("persons".to_string(), json!(7), 3001, json!("name")),
        ("persons".to_string(), json!(null), 3001, json!(null)),
        (
            "persons".to_string(),
            json!(null),
            3001,
            json!("personClientId"),
        ),
        ("products".to_string(), json!(5), 3001, json!("name")),
        ("products".to_string(), json!(6), 3001, json!("price")),
        ("orders".to_string(), json!(2), 2001, json!("customerId")),
        (
            "orderDetails".to_string(),
            json!(10),
            3001,
            json!("quantity"),
        ),
        (
            "orderDetails".to_string(),
            json!(11),
            2001,
            json!("orderClientId"),
        ),
        (
            "orderDetails".to_string(),
            json!(12),
            2001,
            json!("productId"),
        ),
        (
            "orderDetails".to_string(),
            json!(14),
            2001,
            json!("orderId"),
        ),
        ("payments".to_string(), json!(8), 3001, json!("deleted")),
    ];
    assert_eq!(summary, expected, "{v:#}");
    assert!(errors[7]["message"]
        .as_str()
        .unwrap()
        .contains("failed in this request"));
    assert_eq!(s.admin().state(), before);
    assert_eq!(s.admin().counter(), counter);
}

#[test]
fn omit_error_list_answers_the_failure_without_errors() {
    let s = server_with(|c| c.omit_error_list = true);
    let c = Client::in_process(&s).login();
    let v = expect(
        &c.post(
            "SaveAllDataV2",
            json!({"products": [{"productClientId": 1, "name": ""}]}),
        ),
        400,
        3001,
    );
    assert!(v["data"].get("errors").is_none());
    let v = expect(
        &c.post(
            "SaveAllDataV2",
            json!({"orders": [{"orderId": 5, "orderClientId": 1}]}),
        ),
        400,
        2001,
    );
    assert!(v["data"].get("errors").is_none());
}

#[test]
fn malformed_saves_are_400_3001_and_change_nothing() {
    let s = server_with(|c| {
        c.max_records_per_save = 3;
        c.max_body_bytes = 2000;
    });
    s.admin().seed_products(5).unwrap();
    let before = s.admin().state();
    let counter = s.admin().counter();
    let c = Client::in_process(&s).login();
    let many: Vec<Value> = (1..=4)
        .map(|i| json!({"productClientId": i, "name": "p"}))
        .collect();
    for bad in [
        json!({"ghosts": []}),
        json!({"products": {"productClientId": 1}}),
        json!({"products": many}),
        json!([]),
        json!("text"),
        json!({"products": [{"productClientId": 1, "name": "x", "filler": "y".repeat(3000)}]}),
        json!({"products": [{"productId": "1", "name": "x"}]}),
        json!({"products": [{"productId": 1.5, "name": "x"}]}),
        json!({"products": [{"productClientId": 1, "name": "x", "rowVersion": "3"}]}),
        json!({"products": [{"productClientId": 1, "name": 5}]}),
    ] {
        let v = expect(&c.post("SaveAllDataV2", bad.clone()), 400, 3001);
        assert!(!v["message"].as_str().unwrap().is_empty(), "{bad}");
    }
    for raw in [&b"{"[..], b"", b"\xff\xfe", b"{\"products\": [}"] {
        expect(
            &c.raw("SaveAllDataV2", raw.to_vec(), c.token.as_deref())
                .unwrap(),
            400,
            3001,
        );
    }
    assert_eq!(s.admin().state(), before);
    assert_eq!(s.admin().counter(), counter);
}

#[test]
fn children_link_by_parent_client_id_across_requests_and_customer_client_id() {
    let s = server();
    let c = Client::in_process(&s).login();
    // A new customer and its order in one request, linked by client ids.
    let v = expect(
        &c.post(
            "SaveAllDataV2",
            json!({"orders": [{"orderClientId": 50, "customerClientId": 60, "totalAmount": 1}],
                   "persons": [{"personClientId": 60, "name": "New customer"}]}),
        ),
        200,
        0,
    );
    let pid = v["data"]["persons"][0]["personId"].clone();
    let oid = v["data"]["orders"][0]["orderId"].as_i64().unwrap();
    assert_eq!(s.admin().get("orders", oid).unwrap()["customerId"], pid);
    // A later request adds a detail by the parent's client id.
    let v = expect(
        &c.post("SaveAllDataV2", json!({"orderDetails": [{"orderDetailClientId": 1, "orderClientId": 50, "quantity": 3}]})),
        200,
        0,
    );
    let did = v["data"]["orderDetails"][0]["orderDetailId"]
        .as_i64()
        .unwrap();
    assert_eq!(s.admin().get("orderDetails", did).unwrap()["orderId"], oid);
    // A deleted customer refuses new orders.
    s.admin().delete("persons", pid.as_i64().unwrap()).unwrap();
    expect(
        &c.post("SaveAllDataV2", json!({"orders": [new_order(51, pid)]})),
        400,
        2001,
    );
}

#[test]
fn rate_limit_answers_429_with_both_retry_after_forms() {
    for date in [false, true] {
        let s = server_with(|c| {
            c.rate_limit_per_sec = Some(2);
            c.retry_after_http_date = date;
        });
        let c = Client::in_process(&s).login();
        let codes: Vec<u16> = (0..4)
            .map(|_| c.post("GetAllDataV2", json!({"banksRowVersion": 0})))
            .map(|r| {
                if r.status == 429 {
                    let ra = r.header("retry-after").unwrap().to_string();
                    if date {
                        let when = httpdate::parse_http_date(&ra).unwrap();
                        assert!(when > std::time::SystemTime::now() - Duration::from_secs(1));
                    } else {
                        assert!(ra.parse::<u64>().unwrap() >= 1, "{ra}");
                    }
                    assert!(r.tracking_id().is_some());
                }
                r.status
            })
            .collect();
        assert_eq!(codes, vec![200, 200, 429, 429], "date form: {date}");
        // Another token has its own budget.
        let c2 = Client::in_process(&s).login();
        assert_eq!(
            c2.post("GetAllDataV2", json!({"banksRowVersion": 0}))
                .status,
            200
        );
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            c.post("GetAllDataV2", json!({"banksRowVersion": 0})).status,
            200
        );
    }
}

#[test]
fn data_survives_a_restart() {
    let path = common::temp_path("restart").with_extension("db");
    let config = ServerConfig {
        data: Some(path.clone()),
        ..common::documented()
    };
    let (order_id, counter) = {
        let s = RefServer::open(config.clone()).unwrap();
        let cust = customer(&s);
        let c = Client::in_process(&s).login();
        let v = expect(
            &c.post(
                "SaveAllDataV2",
                json!({"orders": [new_order(42, json!(cust))]}),
            ),
            200,
            0,
        );
        (
            v["data"]["orders"][0]["orderId"].clone(),
            s.admin().counter(),
        )
    };
    let s = RefServer::open(config).unwrap();
    assert_eq!(s.admin().counter(), counter);
    let c = Client::in_process(&s).login();
    // Idempotency map survived too.
    let v = expect(
        &c.post(
            "SaveAllDataV2",
            json!({"orders": [new_order(42, json!(1))]}),
        ),
        200,
        0,
    );
    assert_eq!(v["data"]["orders"][0]["orderId"], order_id);
    assert_eq!(s.admin().count("orders"), 1);
    drop(s);
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(path.with_extension(ext));
    }
}

#[test]
fn admin_library_plays_the_desktop() {
    let s = server();
    let a = s.admin();
    let p = a
        .upsert(
            "products",
            json!({"productClientId": 0, "name": "Desk", "price": 10}),
        )
        .unwrap();
    assert_eq!(p["productId"], 1);
    assert_eq!(p["rowVersion"], 1);
    assert_eq!(p["deleted"], false);
    let p2 = a
        .upsert("products", json!({"productId": 1, "price": 11}))
        .unwrap();
    assert_eq!(p2["name"], "Desk");
    assert_eq!(p2["rowVersion"], 2);
    let p3 = a
        .upsert("products", json!({"productId": 50, "name": "Given id"}))
        .unwrap();
    assert_eq!(p3["productId"], 50);
    let d = a.delete("products", 1).unwrap();
    assert_eq!(d["deleted"], true);
    assert_eq!(a.counter(), 4);
    assert_eq!(a.count("products"), 2);
    assert_eq!(a.dump("products").len(), 2);
    assert!(a.get("products", 2).is_none());
    assert!(a.update_fields("products", 2, Default::default()).is_err());
    assert!(a.upsert("ghosts", json!({})).is_err());
    a.seed_persons(3).unwrap();
    assert_eq!(a.count("persons"), 3);
    assert_eq!(a.counter(), 7);
    let state = a.state();
    assert_eq!(state.len(), 18);
    assert_eq!(state["persons"].len(), 3);
}
