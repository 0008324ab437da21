//! The server's own tests of the real Mahak dialect and its habits: the
//! answers have the shape of the real captures (`tests/fixtures/mahak/`),
//! the login wants the MD5 hash, pull paging under each switch, row
//! versions above 2^32, partial saves, resent creates, the order-line rule,
//! unknown parents, and the faults.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{body, Client};
use rowsync_refserver::{
    Fault, FaultBody, RefServer, RunningServer, ServerConfig, ALREADY_REGISTERED, LINE_NEEDS_DETAIL,
};
use serde_json::{json, Value};

/// md5("pass1"), the way every working client sends it.
const PASS1_MD5: &str = "a722c63db8ec8625af6cf71cb8c2d939";

fn capture(name: &str) -> Value {
    let path = format!(
        "{}/../fixtures/mahak/captures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("capture")).expect("JSON")
}

fn mahak() -> ServerConfig {
    ServerConfig {
        admin: true,
        ..ServerConfig::default()
    }
}

fn login_body(password: &str) -> Value {
    json!({"userName": "user1", "password": password, "databaseId": 1001, "packageNo": "2002",
           "appId": "test", "clientVersion": "1"})
}

/// A client logged in with the MD5 hash.
fn logged_in(server: &Arc<RefServer>) -> Client {
    let mut c = Client::in_process(server);
    let r = c.post("Login", login_body(PASS1_MD5));
    let v = body(&r);
    assert_eq!(v["Result"], true, "{v}");
    c.token = Some(v["Data"]["UserToken"].as_str().unwrap().to_string());
    c
}

/// A client over real HTTP on loopback, logged in with the MD5 hash.
fn logged_in_http(running: &RunningServer) -> Client {
    let mut c = Client::http(&running.base_url());
    let v = body(&c.post("Login", login_body(PASS1_MD5)));
    assert_eq!(v["Result"], true, "{v}");
    c.token = Some(v["Data"]["UserToken"].as_str().unwrap().to_string());
    c
}

/// `null` or `[]`, per key, as a string.
fn pattern(objects: &Value) -> BTreeMap<String, &'static str> {
    objects
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let p = match v {
                Value::Null => "null",
                Value::Array(a) if a.is_empty() => "[]",
                Value::Array(_) => "records",
                _ => "other",
            };
            (k.clone(), p)
        })
        .collect()
}

#[test]
fn a_pull_answer_has_the_shape_of_the_capture() {
    let server = start();
    let c = Client::http(&server.base_url());
    let mut c = c;
    let v = body(&c.post("Login", login_body(PASS1_MD5)));
    c.token = Some(v["Data"]["UserToken"].as_str().unwrap().to_string());
    let request = capture("getalldata-pictures.request.json");
    let got = body(&c.post("GetAllData", request));
    let want = capture("getalldata-pictures.response.json");
    assert_eq!(got["Result"], want["Result"]);
    let (g, w) = (&got["Data"]["Objects"], &want["Data"]["Objects"]);
    let gk: Vec<&String> = g.as_object().unwrap().keys().collect();
    let wk: Vec<&String> = w.as_object().unwrap().keys().collect();
    let mut gs = gk.clone();
    let mut ws = wk.clone();
    gs.sort();
    ws.sort();
    assert_eq!(
        gs, ws,
        "the same collections, cased as the real server cases them"
    );
    assert_eq!(pattern(g), pattern(w), "the same null / [] pattern");
}

#[test]
fn a_pulled_product_has_the_keys_of_the_captured_one() {
    let running = start();
    running.server().admin().seed_products(3).unwrap();
    let c = logged_in_http(&running);
    let got = body(&c.post("getalldata", json!({"FromProductVersion": 0})));
    let want = capture("getalldata-products.response.json");
    let product = &got["Data"]["Objects"]["Products"][0];
    let real = &want["Data"]["Objects"]["Products"][0];
    for key in real.as_object().unwrap().keys() {
        assert!(product.get(key).is_some(), "`{key}` in {product}");
    }
    assert!(product["RowVersion"].as_i64().unwrap() > 1 << 32);
    assert_eq!(product["ProductClientId"], 0, "made in the desktop");
    let name = product["Name"].as_str().unwrap();
    assert!(
        name.ends_with("  ") && (name.contains('ي') || name.contains('ك') || name.contains(' '))
    );
}

#[test]
fn a_save_answer_has_the_shape_of_the_capture() {
    let running = start();
    let server = running.server();
    server.admin().seed_products(2).unwrap();
    server.admin().seed_persons(1).unwrap();
    let c = logged_in_http(&running);
    let request = capture("savealldata-partial.request.json");
    // The capture's order names customer 1 and its line product 8308737:
    // the seeded shop has customer 1; the line is bad either way.
    let got = body(&c.post("SaveAllDataV2", request));
    let want = capture("savealldata-partial.response.json");
    assert_eq!(got["Result"], false);
    let (g, w) = (&got["Data"]["Objects"], &want["Data"]["Objects"]);
    let mut gk: Vec<&String> = g.as_object().unwrap().keys().collect();
    let mut wk: Vec<&String> = w.as_object().unwrap().keys().collect();
    gk.sort();
    wk.sort();
    assert_eq!(gk, wk, "every collection, cased as the capture");
    for (k, v) in w.as_object().unwrap() {
        assert!(g[k]["Results"].is_array(), "{k}: {}", g[k]);
        if v["Results"].as_array().unwrap().is_empty() {
            assert_eq!(g[k]["Results"], json!([]), "{k}");
        }
    }
    let order = &g["Orders"]["Results"][0];
    assert_eq!(order["Result"], true);
    assert_eq!(order["Index"], 1);
    assert_eq!(order["EntityClientId"], 10001);
    assert!(order["EntityId"].as_i64().is_some() && order["RowVersion"].as_i64().is_some());
    let line = &g["OrderDetails"]["Results"][0];
    let real = &w["OrderDetails"]["Results"][0];
    assert_eq!(line["Result"], false);
    assert_eq!(line["Index"], 1);
    assert!(
        line.get("EntityClientId").is_none(),
        "a refusal names no client id"
    );
    assert_eq!(line["Errors"], real["Errors"], "the real words");
    assert_eq!(real["Errors"][0]["Error"], LINE_NEEDS_DETAIL);
}

#[test]
fn login_wants_the_md5_hash_and_answers_a_jwt_and_the_session() {
    let server = RefServer::open(mahak()).unwrap();
    let c = Client::in_process(&server);
    let plain = body(&c.post("Login", login_body("pass1")));
    assert_eq!(plain["Result"], false, "the plain password is refused");
    assert!(plain["Message"].is_string());
    let bad_db = body(&c.post(
        "Login",
        json!({"userName": "user1", "password": PASS1_MD5, "databaseId": 7, "packageNo": "2002"}),
    ));
    assert_eq!(bad_db["Result"], false);
    let ok = body(&c.post(
        "login",
        json!({"UserName": "user1", "Password": PASS1_MD5.to_uppercase(), "DatabaseId": 1001,
               "PackageNo": 2002}),
    ));
    assert_eq!(ok["Result"], true, "keys bind without regard to case: {ok}");
    let data = &ok["Data"];
    for key in [
        "VisitorId",
        "SyncId",
        "DatabaseId",
        "UserTitle",
        "ServerTime",
    ] {
        assert!(!data[key].is_null(), "{key}");
    }
    assert!(data.get("ExpireDate").is_none() && data.get("expireDate").is_none());
    let token = data["UserToken"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert!(claims["exp"].as_i64().is_some(), "{claims}");
    // The server time is offset-free, with 7 fractional digits.
    let t = data["ServerTime"].as_str().unwrap();
    assert_eq!(t.len(), "2025-10-04T15:18:38.2345036".len(), "{t}");
    // A call without the token is 401.
    let mut anon = Client::in_process(&server);
    anon.token = None;
    assert_eq!(anon.post("GetAllData", json!({})).status, 401);
}

/// Every record of `collection` pulled from 0 in pages, following the rule
/// an engine must follow: ask again from the new checkpoint until nothing
/// newer comes. Returns the distinct ids and the number of requests.
fn pull_all(
    c: &Client,
    keys: &[(&str, &str, &str)],
    page: usize,
) -> (Vec<BTreeMap<i64, i64>>, usize) {
    let mut cps = vec![0i64; keys.len()];
    let mut seen: Vec<BTreeMap<i64, i64>> = vec![BTreeMap::new(); keys.len()];
    let mut requests = 0;
    loop {
        let mut req = serde_json::Map::new();
        for ((key, _, _), cp) in keys.iter().zip(&cps) {
            req.insert(key.to_string(), json!(cp));
        }
        req.insert("pageSize".into(), json!(page));
        let v = body(&c.post("GetAllData", Value::Object(req)));
        requests += 1;
        let mut news = false;
        for (i, (_, coll, id)) in keys.iter().enumerate() {
            for r in v["Data"]["Objects"][*coll].as_array().unwrap() {
                let rv = r["RowVersion"].as_i64().unwrap();
                if rv > cps[i] {
                    news = true;
                }
                seen[i].insert(r[*id].as_i64().unwrap(), rv);
            }
            let max = seen[i].values().copied().max().unwrap_or(0);
            cps[i] = cps[i].max(max);
        }
        if !news {
            return (seen, requests);
        }
        assert!(requests < 1_000, "never ends");
    }
}

#[test]
fn paging_under_every_cap_and_bound() {
    let keys = [
        ("fromProductVersion", "Products", "ProductId"),
        (
            "fromProductDetailVersion",
            "ProductDetails",
            "ProductDetailId",
        ),
        ("fromPersonVersion", "People", "PersonId"),
    ];
    type Habit = (&'static str, fn(&mut ServerConfig));
    let habits: [Habit; 5] = [
        ("per collection, inclusive", |_| {}),
        ("exclusive", |c| c.exclusive_lower_bound = true),
        ("total cap", |c| c.page_cap_total = true),
        ("server cap", |c| c.server_page_cap = Some(7)),
        ("unordered, no cap", |c| {
            c.unordered = true;
            c.ignore_page_size = true;
        }),
    ];
    for (name, habit) in habits {
        let mut config = mahak();
        habit(&mut config);
        let server = RefServer::open(config).unwrap();
        server.admin().seed_products(95).unwrap();
        server.admin().seed_persons(41).unwrap();
        let c = logged_in(&server);
        // One answer: the caps as the switch says.
        let v = body(&c.post(
            "GetAllData",
            json!({"fromProductVersion": 0, "fromPersonVersion": 0, "pageSize": 20}),
        ));
        let objects = &v["Data"]["Objects"];
        let (p, q) = (
            objects["Products"].as_array().unwrap().len(),
            objects["People"].as_array().unwrap().len(),
        );
        match name {
            "total cap" => assert_eq!(p + q, 20, "{name}"),
            "server cap" => assert_eq!((p, q), (7, 7), "{name}"),
            "unordered, no cap" => assert_eq!((p, q), (95, 41), "{name}"),
            _ => assert_eq!((p, q), (20, 20), "{name}"),
        }
        assert!(objects["ProductDetails"].is_null(), "not asked: null");
        assert!(
            v["Data"].get("hasMore").is_none() && v["Data"]["Objects"].get("HasMore").is_none()
        );
        // All pages: everything, once, whatever the habit.
        let (seen, requests) = pull_all(&c, &keys, 20);
        assert_eq!(
            (seen[0].len(), seen[1].len(), seen[2].len()),
            (95, 95, 41),
            "{name}"
        );
        assert!(requests >= 2, "{name}");
        // The bound: inclusive sends the record at the checkpoint again.
        let max = *seen[0].values().max().unwrap();
        let again = body(&c.post("GetAllData", json!({"fromProductVersion": max})));
        let n = again["Data"]["Objects"]["Products"]
            .as_array()
            .unwrap()
            .len();
        let expected = if name == "exclusive" { 0 } else { 1 };
        assert_eq!(n, expected, "{name}");
    }
}

#[test]
fn unordered_records_come_in_another_order_and_unknown_keys_are_ignored() {
    let mut config = mahak();
    config.unordered = true;
    let server = RefServer::open(config).unwrap();
    server.admin().seed_products(50).unwrap();
    let c = logged_in(&server);
    let v = body(&c.post(
        "GetAllData",
        json!({"fromProductVersion": 0, "productsRowVersion": 0, "pageSize": 50}),
    ));
    let rvs: Vec<i64> = v["Data"]["Objects"]["Products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["RowVersion"].as_i64().unwrap())
        .collect();
    let mut sorted = rvs.clone();
    sorted.sort();
    assert_ne!(rvs, sorted, "shuffled");
    assert!(v["Data"]["Objects"]["Orders"].is_null());
    // A wrong key returns nothing, without an error.
    let v = body(&c.post("GetAllData", json!({"ordersRowVersion": 0})));
    assert_eq!(v["Result"], true);
    assert!(pattern(&v["Data"]["Objects"])
        .values()
        .all(|p| *p == "null"));
}

#[test]
fn saves_are_partial_and_refuse_per_record_with_the_real_words() {
    let server = RefServer::open(mahak()).unwrap();
    server.admin().seed_products(3).unwrap();
    server.admin().seed_persons(2).unwrap();
    let c = logged_in(&server);
    let v = body(&c.post(
        "SaveAllData",
        json!({
            "orders": [
                {"orderClientId": 501, "orderType": 201, "personId": 1},
                {"orderClientId": 502, "orderType": 201, "personId": 424242},
            ],
            "OrderDetails": [
                {"OrderDetailClientId": 601, "OrderClientId": 501, "ProductDetailId": 1, "Count1": 2},
                {"orderDetailClientId": 602, "orderClientId": 502, "productDetailId": 1},
                {"orderDetailClientId": 603, "orderId": 999999, "productDetailId": 1},
            ],
            "people": [{"personClientId": 701, "name": "نو "}],
        }),
    ));
    assert_eq!(v["Result"], false, "some failed");
    let o = &v["Data"]["Objects"];
    let orders = o["Orders"]["Results"].as_array().unwrap();
    assert_eq!(orders[0]["Result"], true);
    assert_eq!(orders[1]["Result"], false);
    assert_eq!(orders[1]["Errors"][0]["Property"], "PersonId");
    let lines = o["OrderDetails"]["Results"].as_array().unwrap();
    assert_eq!(
        lines[0]["Result"], true,
        "saved, linked to the order saved just before"
    );
    assert_eq!(
        lines[1]["Errors"][0]["Property"], "OrderId",
        "its order failed"
    );
    assert_eq!(
        lines[2]["Errors"][0]["Property"], "OrderId",
        "unknown parent id"
    );
    assert_eq!(
        lines
            .iter()
            .map(|l| l["Index"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(o["People"]["Results"][0]["Result"], true);
    let admin = server.admin();
    assert_eq!(admin.count("orders"), 1, "the valid records were saved");
    let order_id = orders[0]["EntityId"].as_i64().unwrap();
    let line = admin
        .get("orderDetails", lines[0]["EntityId"].as_i64().unwrap())
        .unwrap();
    assert_eq!(line["orderId"].as_i64(), Some(order_id));
    // Resending a create: the real words on `<Key>Id`.
    let again = body(&c.post(
        "SaveAllData",
        json!({"orders": [{"orderClientId": 501, "orderType": 201, "personId": 1}]}),
    ));
    let r = &again["Data"]["Objects"]["Orders"]["Results"][0];
    assert_eq!(r["Result"], false);
    assert_eq!(r["Errors"][0]["Property"], "OrderId");
    assert_eq!(r["Errors"][0]["Error"], ALREADY_REGISTERED);
    assert_eq!(admin.count("orders"), 1);
}

#[test]
fn a_resend_can_be_a_silent_update_instead() {
    let mut config = mahak();
    config.resend_updates = true;
    let server = RefServer::open(config).unwrap();
    server.admin().seed_persons(1).unwrap();
    let c = logged_in(&server);
    let save = |note: &str| {
        body(&c.post(
            "SaveAllData",
            json!({"orders": [{"orderClientId": 9, "orderType": 201, "personId": 1, "description": note}]}),
        ))
    };
    let first = save("a");
    let second = save("b");
    let id = |v: &Value| v["Data"]["Objects"]["Orders"]["Results"][0]["EntityId"].as_i64();
    assert_eq!(second["Result"], true);
    assert_eq!(id(&first), id(&second));
    assert_eq!(server.admin().count("orders"), 1);
    assert_eq!(
        server.admin().get("orders", id(&first).unwrap()).unwrap()["description"],
        "b"
    );
}

#[test]
fn offset_dates_can_be_refused_per_record() {
    let mut config = mahak();
    config.refuse_offset_dates = true;
    let server = RefServer::open(config).unwrap();
    server.admin().seed_persons(1).unwrap();
    let c = logged_in(&server);
    let save = |client: i64, date: &str| {
        body(&c.post(
            "SaveAllData",
            json!({"orders": [{"orderClientId": client, "orderType": 201, "personId": 1,
                               "orderDate": date, "description": "2026-12-05T10:00:00Z"}]}),
        ))["Data"]["Objects"]["Orders"]["Results"][0]
            .clone()
    };
    let refused = save(1, "2026-12-05T10:00:00Z");
    assert_eq!(refused["Result"], false);
    assert_eq!(refused["Errors"][0]["Property"], "OrderDate");
    let refused = save(2, "2026-12-05T13:30:00+03:30");
    assert_eq!(refused["Result"], false);
    // Offset-free dates are taken, and text that looks like a date is text.
    assert_eq!(save(3, "2026-12-05T13:30:00")["Result"], true);
    assert_eq!(save(4, "2025-10-04T15:18:38.2345036")["Result"], true);
    assert_eq!(server.admin().count("orders"), 2);
}

#[test]
fn faults_work_in_the_mahak_dialect() {
    let server = RefServer::open(mahak()).unwrap();
    server.admin().seed_persons(1).unwrap();
    let c = logged_in(&server);
    server
        .faults()
        .inject(Some("GetAllDataV2"), Fault::Status(503, FaultBody::Html), 1);
    let r = c.post("GetAllData", json!({"fromPersonVersion": 0}));
    assert_eq!(r.status, 503, "a script for the V2 name hits the plain one");
    assert!(String::from_utf8_lossy(&r.body).contains("<html>"));
    server.faults().inject(
        Some("GetAllData"),
        Fault::RateLimit {
            retry_after: rowsync_refserver::RetryAfter::Seconds(3),
        },
        1,
    );
    let r = c.post("GetAllData", json!({"fromPersonVersion": 0}));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("3"));
    // A lost answer: the save was applied.
    server
        .faults()
        .inject(Some("SaveAllData"), Fault::LoseResponseAfterApply, 1);
    let lost = c.raw(
        "SaveAllData",
        json!({"people": [{"personClientId": 5, "name": "x"}]})
            .to_string()
            .into_bytes(),
        c.token.as_deref(),
    );
    assert!(lost.is_err());
    assert!(server.admin().id_for_client("people", 5).is_some());
}

fn start() -> RunningServer {
    RunningServer::start(mahak()).unwrap()
}
