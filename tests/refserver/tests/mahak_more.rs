//! More of the mahak dialect's habits: the shop's orders and `orderTypes`,
//! paths and keys without regard to case over real HTTP, the session the
//! admin moves, the JWT's claims, updates and logical deletes (last writer
//! wins, no 2002), lenient parents, desktop writes, limits and every fault
//! kind in the real envelope.

mod common;

use std::sync::Arc;

use common::{body, Client};
use rowsync_refserver::{Dialect, Fault, FaultBody, RefServer, RunningServer, ServerConfig};
use serde_json::{json, Value};

/// md5("pass1").
const PASS1_MD5: &str = "a722c63db8ec8625af6cf71cb8c2d939";

fn mahak() -> ServerConfig {
    ServerConfig {
        admin: true,
        ..ServerConfig::default()
    }
}

fn login_body() -> Value {
    json!({"userName": "user1", "password": PASS1_MD5, "databaseId": 1001, "packageNo": "2002"})
}

fn log_in(mut c: Client) -> Client {
    let v = body(&c.post("Login", login_body()));
    assert_eq!(v["Result"], true, "{v}");
    c.token = Some(v["Data"]["UserToken"].as_str().unwrap().to_string());
    c
}

fn logged_in(server: &Arc<RefServer>) -> Client {
    log_in(Client::in_process(server))
}

fn results<'a>(v: &'a Value, collection: &str) -> &'a Vec<Value> {
    v["Data"]["Objects"][collection]["Results"]
        .as_array()
        .unwrap_or_else(|| panic!("no {collection} results in {v}"))
}

#[test]
fn mahak_is_the_default_and_the_server_says_which_it_speaks() {
    assert_eq!(ServerConfig::default().dialect, Dialect::Mahak);
    let server = RefServer::open(mahak()).unwrap();
    assert_eq!(server.dialect(), Dialect::Mahak);
    let names = server.collections();
    assert_eq!(names.len(), 57);
    let at = |n: &str| names.iter().position(|c| c == n).unwrap();
    assert!(at("people") < at("orders") && at("orders") < at("orderDetails"));
    assert!(at("products") < at("productDetails") && at("productDetails") < at("orderDetails"));
    let documented = RefServer::open(ServerConfig {
        dialect: Dialect::Documented,
        ..ServerConfig::default()
    })
    .unwrap();
    assert_eq!(documented.dialect(), Dialect::Documented);
    assert!(documented.collections().contains(&"persons".to_string()));
}

#[test]
fn a_seeded_shop_has_orders_of_every_type_and_order_types_filter_before_paging() {
    let server = RefServer::open(mahak()).unwrap();
    let admin = server.admin();
    assert!(
        admin.seed_orders(1).is_err(),
        "no customers or products yet"
    );
    admin.seed_products(20).unwrap();
    admin.seed_persons(10).unwrap();
    admin.seed_orders(300).unwrap();
    assert_eq!(admin.count("orders"), 300);
    let lines = admin.dump("orderDetails");
    assert!(lines.len() >= 300);
    let orders = admin.dump("orders");
    let of_type = |t: i64| orders.iter().filter(|o| o["orderType"] == t).count();
    for t in [201, 202, 203, 204, 299] {
        assert!(of_type(t) > 0, "type {t}");
    }
    assert!(
        of_type(201) > of_type(203) && of_type(201) > of_type(299),
        "mostly sales"
    );
    // A visitor's order (203) was made by the visitor's app: it and its lines
    // carry the app's client ids, which the server knows; the rest were
    // made in the desktop (client id 0).
    for o in &orders {
        let id = o["orderId"].as_i64().unwrap();
        let cid = o["orderClientId"].as_i64().unwrap();
        let own: Vec<&Value> = lines.iter().filter(|l| l["orderId"] == id).collect();
        assert!((1..=3).contains(&own.len()), "order {id} has its lines");
        if o["orderType"] == 203 {
            assert!(cid > 0, "{o}");
            assert_eq!(admin.id_for_client("orders", cid), Some(id));
            for l in own {
                assert_eq!(l["orderClientId"], cid);
                let lcid = l["orderDetailClientId"].as_i64().unwrap();
                assert!(lcid > 0);
                assert_eq!(
                    admin.id_for_client("orderDetails", lcid),
                    l["orderDetailId"].as_i64()
                );
            }
        } else {
            assert_eq!(cid, 0, "{o}");
            assert!(own.iter().all(|l| l["orderDetailClientId"] == 0));
        }
    }
    // The first five of a seed are one of each type: a small shop has them.
    let small = RefServer::open(mahak()).unwrap();
    small.admin().seed_products(2).unwrap();
    small.admin().seed_persons(2).unwrap();
    small.admin().seed_orders(5).unwrap();
    let mut kinds: Vec<i64> = small
        .admin()
        .dump("orders")
        .iter()
        .map(|o| o["orderType"].as_i64().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, [201, 202, 203, 204, 299]);
    for o in &orders {
        let date = o["orderDate"].as_str().unwrap();
        assert_eq!(
            date.len(),
            "2025-11-29T12:00:00".len(),
            "offset-free: {date}"
        );
        assert!(admin
            .get("people", o["personId"].as_i64().unwrap())
            .is_some());
        assert!(o["discount"].is_number());
    }
    for l in &lines {
        assert!(admin
            .get("productDetails", l["productDetailId"].as_i64().unwrap())
            .is_some());
        assert!(l["count1"].is_number() && l["price"].is_number());
    }
    let c = logged_in(&server);
    // Delivery pre-invoices only, then visitors' orders only, five at a
    // time: every one of them, nothing else.
    for t in [299, 203] {
        let mut cp = 0;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let v = body(&c.post(
                "GetAllData",
                json!({"fromOrderVersion": cp, "orderTypes": [t], "pageSize": 5}),
            ));
            let page = v["Data"]["Objects"]["Orders"].as_array().unwrap();
            assert!(!page.is_empty(), "a page of type {t} is never hidden");
            let mut news = false;
            for o in page {
                assert_eq!(o["OrderType"], t);
                news |= seen.insert(o["OrderId"].as_i64().unwrap());
                cp = cp.max(o["RowVersion"].as_i64().unwrap());
            }
            if !news {
                break;
            }
        }
        assert_eq!(seen.len(), of_type(t), "type {t}");
    }
    // Both at once, and no filter: all of them.
    let v = body(&c.post(
        "GetAllData",
        json!({"fromOrderVersion": 0, "orderTypes": [203, 299]}),
    ));
    let both = v["Data"]["Objects"]["Orders"].as_array().unwrap();
    assert_eq!(both.len(), of_type(203) + of_type(299));
    let v = body(&c.post("GetAllData", json!({"fromOrderVersion": 0})));
    assert_eq!(
        v["Data"]["Objects"]["Orders"].as_array().unwrap().len(),
        300
    );
}

#[test]
fn paths_are_case_insensitive_and_the_admin_moves_the_session_over_http() {
    let running = RunningServer::start(mahak()).unwrap();
    running.server().admin().seed_persons(3).unwrap();
    let base = running.base_url().replace("/API/v3", "/api/v3");
    let c = log_in(Client::http(&base));
    let v = body(&c.post("getalldatav2", json!({"FROMPERSONVERSION": 0})));
    assert_eq!(v["Result"], true);
    assert_eq!(v["Data"]["Objects"]["People"].as_array().unwrap().len(), 3);
    let v = body(&c.post(
        "savealldata",
        json!({"People": [{"PersonClientId": 77, "Name": "x"}]}),
    ));
    assert_eq!(v["Result"], true, "{v}");
    // The admin endpoint changes the ids a login reports.
    let agent = common::Http::new().0;
    let mut r = agent
        .post(&format!("http://{}/admin/session", running.addr()))
        .send(
            json!({"databaseId": 1002, "visitorId": 77})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.body_mut().read_to_string();
    let v = body(&c.post("LoginV2", login_body()));
    assert_eq!(v["Data"]["DatabaseId"], 1002);
    assert_eq!(v["Data"]["VisitorId"], 77);
    // The library call, one at a time.
    running.server().admin().set_session_ids(None, Some(31));
    let v = body(&c.post("Login", login_body()));
    assert_eq!(
        (
            v["Data"]["DatabaseId"].clone(),
            v["Data"]["VisitorId"].clone()
        ),
        (json!(1002), json!(31))
    );
    running.stop();
}

#[test]
fn the_token_carries_exp_iat_and_nbf_and_expires_into_a_401() {
    let server = RefServer::open(ServerConfig {
        token_ttl: std::time::Duration::from_millis(300),
        ..mahak()
    })
    .unwrap();
    let c = logged_in(&server);
    let token = c.token.clone().unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    for k in ["exp", "iat", "nbf"] {
        assert!(claims[k].as_i64().is_some(), "{k} in {claims}");
    }
    assert_eq!(c.post("GetAllData", json!({})).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(400));
    let r = c.post("GetAllData", json!({"fromPersonVersion": 0}));
    assert_eq!(r.status, 401);
    assert_eq!(body(&r)["Result"], false);
}

#[test]
fn updates_overwrite_and_deletes_are_logical_with_no_conflict_answer() {
    let server = RefServer::open(mahak()).unwrap();
    server.admin().seed_persons(1).unwrap();
    let c = logged_in(&server);
    let v = body(&c.post(
        "SaveAllData",
        json!({"orders": [{"orderClientId": 1, "orderType": 201, "personId": 1, "description": "a"}]}),
    ));
    let first = &results(&v, "Orders")[0];
    let id = first["EntityId"].as_i64().unwrap();
    let rv1 = first["RowVersion"].as_i64().unwrap();
    assert!(rv1 > 1 << 32);
    // Another hand changes it; our stale update still wins.
    server
        .admin()
        .update_fields(
            "orders",
            id,
            json!({"description": "desk"}).as_object().unwrap().clone(),
        )
        .unwrap();
    let v = body(&c.post(
        "SaveAllData",
        json!({"Orders": [{"OrderId": id, "OrderClientId": 1, "Description": "b", "RowVersion": rv1}]}),
    ));
    assert_eq!(v["Result"], true, "no 2002 in this dialect: {v}");
    let r = &results(&v, "Orders")[0];
    assert_eq!(r["EntityId"], id);
    assert!(r["RowVersion"].as_i64().unwrap() > rv1);
    assert_eq!(
        server.admin().get("orders", id).unwrap()["description"],
        "b"
    );
    let v = body(&c.post(
        "SaveAllData",
        json!({"orders": [{"orderId": id, "deleted": true}]}),
    ));
    assert_eq!(v["Result"], true);
    let stored = server.admin().get("orders", id).unwrap();
    assert_eq!(stored["deleted"], true, "a logical delete");
    assert_eq!(stored["orderType"], 201, "the rest is kept");
    let p = body(&c.post("GetAllData", json!({"fromOrderVersion": 0})));
    assert_eq!(p["Data"]["Objects"]["Orders"][0]["Deleted"], true);
    // An unknown server id is refused on its own field.
    let v = body(&c.post(
        "SaveAllData",
        json!({"orders": [{"orderId": 999_999, "description": "x"}]}),
    ));
    assert_eq!(results(&v, "Orders")[0]["Errors"][0]["Property"], "OrderId");
}

#[test]
fn parents_are_lenient_but_unknown_ones_are_refused_on_their_id() {
    let server = RefServer::open(mahak()).unwrap();
    server.admin().seed_products(2).unwrap();
    let c = logged_in(&server);
    let v = body(&c.post(
        "SaveAllData",
        json!({
            "orders": [{"orderClientId": 5, "orderType": 299}],
            "orderDetails": [
                {"orderDetailClientId": 1, "orderClientId": 5, "productDetailClientId": 0, "productDetailId": 1},
                {"orderDetailClientId": 2, "orderClientId": 6, "productDetailId": 1},
                {"orderDetailClientId": 3, "orderClientId": 5, "productDetailClientId": 12345},
                {"orderDetailClientId": 4, "orderClientId": 5, "incomeId": 3},
            ],
        }),
    ));
    assert_eq!(v["Result"], false);
    assert_eq!(
        results(&v, "Orders")[0]["Result"],
        true,
        "no customer required"
    );
    let lines = results(&v, "OrderDetails");
    assert_eq!(lines[0]["Result"], true);
    assert_eq!(
        lines[1]["Errors"][0]["Property"], "OrderId",
        "unknown client id"
    );
    assert_eq!(lines[2]["Errors"][0]["Property"], "ProductDetailId");
    assert!(lines[1].get("EntityClientId").is_none() && lines[1].get("EntityId").is_none());
    assert!(lines[1].get("RowVersion").is_none());
    // `incomeId` alone satisfies the line rule (incomes are not a collection
    // the server checks).
    assert_eq!(lines[3]["Result"], true, "{}", lines[3]);
}

#[test]
fn desktop_writes_have_client_id_zero_a_code_and_the_bookkeeping_fields() {
    let server = RefServer::open(mahak()).unwrap();
    let stored = server
        .admin()
        .upsert(
            "people",
            json!({"name": "كاوه رضايي  ", "personGroupId": null}),
        )
        .unwrap();
    assert_eq!(stored["personClientId"], 0);
    assert_eq!(stored["personCode"], stored["personId"]);
    let c = logged_in(&server);
    let v = body(&c.post("GetAllData", json!({"fromPersonVersion": 0})));
    let p = &v["Data"]["Objects"]["People"][0];
    for k in [
        "PersonId",
        "PersonClientId",
        "PersonCode",
        "Name",
        "Deleted",
        "RowVersion",
        "DataHash",
        "CreateDate",
        "UpdateDate",
        "CreateSyncId",
        "UpdateSyncId",
    ] {
        assert!(p.get(k).is_some(), "{k} in {p}");
    }
    assert_eq!(p["Name"], "كاوه رضايي  ", "text kept as it is");
    let date = p["UpdateDate"].as_str().unwrap();
    assert_eq!(date.len(), "2025-10-04T15:18:38.2345036".len(), "{date}");
    assert!(!date.ends_with('Z') && !date.contains('+'));
}

#[test]
fn limits_answer_result_false_with_a_message() {
    let server = RefServer::open(ServerConfig {
        max_records_per_save: 2,
        max_body_bytes: 2_000,
        ..mahak()
    })
    .unwrap();
    let c = logged_in(&server);
    let people: Vec<Value> = (1..=3)
        .map(|i| json!({"personClientId": i, "name": "x"}))
        .collect();
    let r = c.post("SaveAllData", json!({ "people": people }));
    assert_eq!(r.status, 200);
    let v = body(&r);
    assert_eq!(v["Result"], false);
    assert!(v["Message"].as_str().unwrap().contains("too many"));
    let r = c.post(
        "SaveAllData",
        json!({"people": [{"name": "x".repeat(3_000)}]}),
    );
    let v = body(&r);
    assert_eq!((r.status, v["Result"].clone()), (200, json!(false)));
    assert!(v["Message"].as_str().unwrap().contains("too large"));
    assert_eq!(server.admin().count("people"), 0);
    // Unknown endpoints and methods are refused in the same envelope.
    let r = c.post("SolveEverything", json!({}));
    assert_eq!(r.status, 404);
    assert_eq!(body(&r)["Result"], false);
}

#[test]
fn every_fault_kind_works_in_mahak_over_http() {
    let running = RunningServer::start(ServerConfig {
        rate_limit_per_sec: Some(1),
        ..mahak()
    })
    .unwrap();
    let server = running.server().clone();
    server.admin().seed_persons(2).unwrap();
    let c = log_in(Client::http(&running.base_url()));
    let faults = server.faults();
    // A script for the V2 name, any case, hits the plain name.
    faults.inject(Some("savealldatav2"), Fault::DropBeforeResponse, 1);
    let send = |id: i64| {
        c.raw(
            "SaveAllData",
            json!({"people": [{"personClientId": id, "name": "y"}]})
                .to_string()
                .into_bytes(),
            c.token.as_deref(),
        )
    };
    assert!(send(1).is_err(), "dropped");
    assert!(
        server.admin().id_for_client("people", 1).is_none(),
        "nothing applied"
    );
    faults.inject(Some("SAVEALLDATA"), Fault::CutResponse, 1);
    assert!(send(2).is_err(), "cut");
    assert!(
        server.admin().id_for_client("people", 2).is_some(),
        "applied, answer cut"
    );
    faults.inject(Some("GetAllDataV2"), Fault::Status(503, FaultBody::Html), 1);
    let r = c.post("getalldata", json!({"fromPersonVersion": 0}));
    assert_eq!(r.status, 503);
    assert!(String::from_utf8_lossy(&r.body).contains("<html>"));
    faults.inject(
        Some("GetAllData"),
        Fault::Status(500, FaultBody::Envelope),
        1,
    );
    let r = c.post("GetAllData", json!({"fromPersonVersion": 0}));
    assert_eq!((r.status, body(&r)["Result"].clone()), (500, json!(false)));
    faults.inject(Some("GetAllData"), Fault::ExpireToken, 1);
    assert_eq!(c.post("GetAllData", json!({})).status, 401);
    // The server's own rate limit: 429, Retry-After, the real envelope.
    let mut limited = None;
    for _ in 0..5 {
        let r = c.post("GetAllData", json!({}));
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("rate limited");
    assert!(r.header("retry-after").is_some());
    assert_eq!(body(&r)["Result"], false);
    running.stop();
}

#[test]
fn regions_are_read_only_reference_data_served_in_pulls() {
    let server = RefServer::open(mahak()).unwrap();
    server
        .admin()
        .seed(
            "regions",
            vec![
                json!({"cityID": 1, "cityName": "تهران", "provinceID": 8, "provinceName": "تهران"}),
                json!({"cityID": 2, "cityName": "كرج", "provinceID": 30, "provinceName": "البرز"}),
            ],
        )
        .unwrap();
    let stored = server.admin().get("regions", 2).unwrap();
    assert_eq!(stored["cityName"], "كرج");
    assert!(
        stored
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("ClientId")),
        "no client id invented: {stored}"
    );
    let c = logged_in(&server);
    let v = body(&c.post("GetAllData", json!({"fromRegionVersion": 0})));
    let regions = v["Data"]["Objects"]["Regions"].as_array().unwrap();
    assert_eq!(regions.len(), 2);
    assert_eq!(regions[0]["CityID"], 1);
    assert!(regions[0]["RowVersion"].as_i64().unwrap() > 1 << 32);
    let v = body(&c.post(
        "SaveAllData",
        json!({"regions": [{"cityID": 3, "cityName": "x"}]}),
    ));
    assert_eq!(v["Result"], false);
    assert_eq!(server.admin().count("regions"), 2);
}

/// Issue 25.3: the login's `ServerTime` is Tehran wall time (no offset, 7
/// fractional digits); `clock_offset_seconds` moves it, `omit_server_time`
/// leaves it out, and the admin interface changes both at run time.
#[test]
fn server_time_is_tehran_time_shifted_or_left_out_on_demand() {
    let running = RunningServer::start(ServerConfig {
        clock_offset_seconds: 1200,
        ..mahak()
    })
    .unwrap();
    let c = Client::http(&running.base_url());
    let tehran_offset = chrono::Duration::seconds(3 * 3600 + 1800);
    let skew_of = |v: &Value| {
        let text = v["Data"]["ServerTime"].as_str().expect("a ServerTime");
        assert_eq!(text.split('.').nth(1).map(str::len), Some(7), "{text}");
        let t = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").unwrap();
        (t.and_utc() - tehran_offset - chrono::Utc::now()).num_seconds()
    };
    let v = body(&c.post("Login", login_body()));
    assert!((skew_of(&v) - 1200).abs() <= 5, "{v}");
    let agent = common::Http::new().0;
    let admin = |b: Value| {
        let mut r = agent
            .post(&format!("http://{}/admin/clock", running.addr()))
            .send(b.to_string().as_bytes())
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.body_mut().read_to_string();
    };
    admin(json!({"offsetSeconds": -300}));
    let v = body(&c.post("Login", login_body()));
    assert!((skew_of(&v) + 300).abs() <= 5, "{v}");
    admin(json!({"serverTime": false}));
    let v = body(&c.post("Login", login_body()));
    assert_eq!(v["Result"], true);
    assert!(v["Data"].get("ServerTime").is_none(), "{v}");
    admin(json!({"offsetSeconds": 0, "serverTime": true}));
    let v = body(&c.post("Login", login_body()));
    assert!(skew_of(&v).abs() <= 5, "{v}");
    running.stop();
}
