//! The server over real HTTP: concurrency, every fault kind, big and broken
//! requests, the admin endpoints.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{body, expect, Client};
use rowsync_refserver::{Fault, FaultBody, FaultConfig, RetryAfter, RunningServer, ServerConfig};
use serde_json::{json, Value};

fn start() -> RunningServer {
    RunningServer::start(ServerConfig {
        admin: true,
        ..common::documented()
    })
    .unwrap()
}

fn order(client_id: i64) -> Value {
    json!({"orderId": null, "orderClientId": client_id, "totalAmount": 100, "rowVersion": null})
}

#[test]
fn login_save_pull_over_http() {
    let srv = start();
    assert!(srv.base_url().starts_with("http://127.0.0.1:"));
    assert!(srv.base_url().ends_with("/API/v3"));
    let c = Client::http(&srv.base_url()).login();
    let v = expect(
        &c.post("SaveAllDataV2", json!({"orders": [order(1), order(2)]})),
        200,
        0,
    );
    assert_eq!(v["data"]["orders"].as_array().unwrap().len(), 2);
    let v = expect(
        &c.post("GetAllDataV2", json!({"ordersRowVersion": 0})),
        200,
        0,
    );
    assert_eq!(v["data"]["orders"]["records"].as_array().unwrap().len(), 2);
    let log = srv.server().requests();
    let save = log.iter().find(|e| e.endpoint == "SaveAllDataV2").unwrap();
    assert_eq!(save.counts, vec![("orders".to_string(), 2)]);
    assert_eq!(save.status, Some(200));
    srv.stop();
}

#[test]
fn fifty_clients_at_once() {
    let srv = start();
    let base = srv.base_url();
    let threads: Vec<_> = (0..50)
        .map(|t| {
            let base = base.clone();
            std::thread::spawn(move || {
                let c = Client::http(&base).login();
                let mut ids = Vec::new();
                for batch in 0..4 {
                    let orders: Vec<Value> = (0..5)
                        .map(|i| order(t * 1000 + batch * 10 + i + 1))
                        .collect();
                    let v = expect(
                        &c.post("SaveAllDataV2", json!({ "orders": orders })),
                        200,
                        0,
                    );
                    for o in v["data"]["orders"].as_array().unwrap() {
                        ids.push(o["orderId"].as_i64().unwrap());
                    }
                    expect(
                        &c.post(
                            "GetAllDataV2",
                            json!({"ordersRowVersion": 0, "pageSize": 50}),
                        ),
                        200,
                        0,
                    );
                }
                ids
            })
        })
        .collect();
    let mut all: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 50 * 20);
    assert_eq!(srv.server().admin().count("orders"), 1000);
    assert_eq!(srv.server().admin().counter(), 1000);
}

#[test]
fn injected_error_statuses_and_bodies() {
    let srv = start();
    let c = Client::http(&srv.base_url()).login();
    let f = srv.server().faults();
    let pull = json!({"ordersRowVersion": 0});
    f.inject(
        Some("GetAllDataV2"),
        Fault::Status(500, FaultBody::Empty),
        1,
    );
    f.inject(Some("GetAllDataV2"), Fault::Status(503, FaultBody::Html), 1);
    f.inject(
        Some("GetAllDataV2"),
        Fault::Status(502, FaultBody::TruncatedJson),
        1,
    );
    f.inject(None, Fault::Status(504, FaultBody::Envelope), 1);
    let r = c.post("GetAllDataV2", pull.clone());
    assert_eq!((r.status, r.body.len()), (500, 0));
    assert!(r.tracking_id().is_some());
    let r = c.post("GetAllDataV2", pull.clone());
    assert_eq!(r.status, 503);
    assert!(String::from_utf8_lossy(&r.body).contains("<html>"));
    let r = c.post("GetAllDataV2", pull.clone());
    assert_eq!(r.status, 502);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    let r = c.post("SaveAllDataV2", json!({}));
    assert_eq!(body(&r)["success"], false);
    assert_eq!(r.status, 504);
    expect(&c.post("GetAllDataV2", pull), 200, 0);
    assert_eq!(f.pending(), 0);
}

#[test]
fn injected_rate_limits_latency_and_expired_tokens() {
    let srv = start();
    let c = Client::http(&srv.base_url()).login();
    let f = srv.server().faults();
    let pull = json!({"ordersRowVersion": 0});
    f.inject(
        None,
        Fault::RateLimit {
            retry_after: RetryAfter::Seconds(2),
        },
        1,
    );
    f.inject(
        None,
        Fault::RateLimit {
            retry_after: RetryAfter::HttpDate(3),
        },
        1,
    );
    let r = c.post("GetAllDataV2", pull.clone());
    assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));
    let r = c.post("GetAllDataV2", pull.clone());
    assert_eq!(r.status, 429);
    let when = httpdate::parse_http_date(r.header("retry-after").unwrap()).unwrap();
    let ahead = when
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        ahead > Duration::from_secs(1) && ahead <= Duration::from_secs(3),
        "{ahead:?}"
    );

    f.inject(
        Some("GetAllDataV2"),
        Fault::Latency(Duration::from_millis(300)),
        1,
    );
    let t = Instant::now();
    expect(&c.post("GetAllDataV2", pull.clone()), 200, 0);
    assert!(t.elapsed() >= Duration::from_millis(300));

    f.inject(None, Fault::ExpireToken, 1);
    expect(&c.post("GetAllDataV2", pull.clone()), 401, 1003);
    expect(&c.post("GetAllDataV2", pull), 200, 0);
}

#[test]
fn dropped_cut_and_lost_responses() {
    let srv = start();
    let s = srv.server().clone();
    let c = Client::http(&srv.base_url()).login();
    let f = s.faults();
    let save = json!({"orders": [order(9)]});

    // Dropped before the response: nothing applied.
    f.inject(Some("SaveAllDataV2"), Fault::DropBeforeResponse, 1);
    let before = s.admin().counter();
    assert!(c
        .raw(
            "SaveAllDataV2",
            save.to_string().into_bytes(),
            c.token.as_deref()
        )
        .is_err());
    assert_eq!(s.admin().counter(), before);
    assert_eq!(s.admin().count("orders"), 0);

    // Applied, response lost: the resend maps onto the same record.
    f.inject(Some("SaveAllDataV2"), Fault::LoseResponseAfterApply, 1);
    assert!(c
        .raw(
            "SaveAllDataV2",
            save.to_string().into_bytes(),
            c.token.as_deref()
        )
        .is_err());
    assert_eq!(s.admin().count("orders"), 1);
    let v = expect(&c.post("SaveAllDataV2", save.clone()), 200, 0);
    assert_eq!(v["data"]["orders"][0]["orderId"], 1);
    assert_eq!(s.admin().count("orders"), 1);

    // Cut in the middle: the client sees an incomplete body.
    f.inject(Some("GetAllDataV2"), Fault::CutResponse, 1);
    let err = c
        .raw(
            "GetAllDataV2",
            json!({"ordersRowVersion": 0}).to_string().into_bytes(),
            c.token.as_deref(),
        )
        .unwrap_err();
    assert_eq!(err.kind, rowsync::TransportErrorKind::Io);
    // The server keeps serving.
    expect(
        &c.post("GetAllDataV2", json!({"ordersRowVersion": 0})),
        200,
        0,
    );
    let log = s.requests();
    assert!(log
        .iter()
        .any(|e| e.fault.as_deref() == Some("cut response")));
    assert!(log.iter().any(|e| e.outcome.contains("response lost")));
}

#[test]
fn the_same_seed_replays_the_same_faults() {
    let run = || {
        let srv = RunningServer::start(ServerConfig {
            seed: 99,
            faults: FaultConfig::chaos(0.6),
            ..common::documented()
        })
        .unwrap();
        let mut c = Client::http(&srv.base_url());
        let mut seen = Vec::new();
        for i in 0..40 {
            if c.token.is_none() {
                let login = json!({"username": "user1", "password": "pass1",
                                   "databaseId": 1001, "packageNumber": 2002});
                let r = c.raw("LoginV2", login.to_string().into_bytes(), None);
                seen.push(r.as_ref().map(|r| r.status).unwrap_or(0));
                if let Some(r) = r.ok().filter(|r| r.status == 200) {
                    c.token = body(&r)["data"]["token"].as_str().map(str::to_string);
                }
                continue;
            }
            let r = c.raw(
                "SaveAllDataV2",
                json!({"orders": [order(i)]}).to_string().into_bytes(),
                c.token.as_deref(),
            );
            let status = r.map(|r| r.status).unwrap_or(0);
            if status == 401 {
                c.token = None;
            }
            seen.push(status);
        }
        let faults: Vec<Option<String>> = srv
            .server()
            .requests()
            .into_iter()
            .map(|e| e.fault)
            .collect();
        (seen, faults)
    };
    let (a, fa) = run();
    let (b, fb) = run();
    assert_eq!(fa, fb);
    assert_eq!(a, b);
    assert!(fa.iter().filter(|f| f.is_some()).count() >= 5, "{fa:?}");
}

#[test]
fn huge_bodies_and_broken_http_are_refused() {
    let srv = start();
    let c = Client::http(&srv.base_url()).login();
    let huge = format!(
        "{{\"products\": [{{\"productClientId\": 1, \"name\": \"{}\"}}]}}",
        "x".repeat(11 * 1024 * 1024)
    );
    let r = c
        .raw("SaveAllDataV2", huge.into_bytes(), c.token.as_deref())
        .unwrap();
    let v = expect(&r, 400, 3001);
    assert!(v["message"].as_str().unwrap().contains("too large"));
    assert_eq!(srv.server().admin().count("products"), 0);

    // Garbage on the socket.
    let mut sock = TcpStream::connect(srv.addr()).unwrap();
    sock.write_all(b"NONSENSE\r\n\r\n").unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");

    // A GET, a chunked POST, an unknown path.
    let mut sock = TcpStream::connect(srv.addr()).unwrap();
    sock.write_all(
        b"GET /API/v3/Sync/GetAllDataV2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("trackingid: rs-"),
        "{out}"
    );

    let token = c.token.clone().unwrap();
    let mut sock = TcpStream::connect(srv.addr()).unwrap();
    let payload = b"{\"ordersRowVersion\": 0}";
    write!(
        sock,
        "POST /API/v3/Sync/GetAllDataV2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        10
    )
    .unwrap();
    sock.write_all(&payload[..10]).unwrap();
    write!(sock, "\r\n{:x}\r\n", payload.len() - 10).unwrap();
    sock.write_all(&payload[10..]).unwrap();
    sock.write_all(b"\r\n0\r\n\r\n").unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"orders\""), "{out}");

    let r = c.raw("../Other/Thing", b"{}".to_vec(), None).unwrap();
    assert_eq!(r.status, 404);
    // Still alive.
    expect(
        &c.post("GetAllDataV2", json!({"ordersRowVersion": 0})),
        200,
        0,
    );
}

fn admin_call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let agent = common::Http::new().0;
    let url = format!("{base}/admin/{path}");
    let resp = match (method, body) {
        ("GET", _) => agent.get(&url).call(),
        ("DELETE", _) => agent.delete(&url).call(),
        (_, b) => agent
            .post(&url)
            .send(b.unwrap_or(Value::Null).to_string().as_bytes()),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let v: Value = serde_json::from_slice(&resp.into_body().read_to_vec().unwrap()).unwrap();
    (status, v)
}

#[test]
fn admin_over_http() {
    let srv = start();
    let base = srv.base_url();
    let (st, v) = admin_call(
        &base,
        "POST",
        "seed",
        Some(json!({"products": 10, "persons": 2})),
    );
    assert_eq!((st, v["data"]["counter"].as_i64()), (200, Some(12)));
    let (_, v) = admin_call(
        &base,
        "POST",
        "records/banks",
        Some(json!({"name": "Saman", "bankCode": 300})),
    );
    let bank_id = v["data"]["bankId"].as_i64().unwrap();
    let (_, v) = admin_call(
        &base,
        "POST",
        &format!("records/banks/{bank_id}"),
        Some(json!({"name": "Melli"})),
    );
    assert_eq!(v["data"]["name"], "Melli");
    let (_, v) = admin_call(&base, "DELETE", &format!("records/banks/{bank_id}"), None);
    assert_eq!(v["data"]["deleted"], true);
    let (_, v) = admin_call(&base, "GET", &format!("records/banks/{bank_id}"), None);
    assert_eq!(v["data"]["rowVersion"], 15);
    let (_, v) = admin_call(&base, "GET", "records/products", None);
    assert_eq!(v["data"].as_array().unwrap().len(), 10);
    let (_, v) = admin_call(&base, "GET", "counter", None);
    assert_eq!(v["data"]["counter"], 15);
    let (_, v) = admin_call(&base, "GET", "state", None);
    assert_eq!(v["data"]["persons"].as_array().unwrap().len(), 2);
    let (st, _) = admin_call(&base, "GET", "records/ghosts", None);
    assert_eq!(st, 404);
    let (st, _) = admin_call(&base, "GET", "records/banks/999", None);
    assert_eq!(st, 404);
    // Faults through HTTP.
    let (st, v) = admin_call(
        &base,
        "POST",
        "faults/inject",
        Some(json!({"endpoint": "GetAllDataV2", "fault": {"status": [503, "html"]}, "times": 2})),
    );
    assert_eq!((st, v["data"]["pending"].as_u64()), (200, Some(2)), "{v}");
    let c = Client::http(&base).login();
    assert_eq!(
        c.post("GetAllDataV2", json!({"banksRowVersion": 0})).status,
        503
    );
    let (st, _) = admin_call(&base, "POST", "faults/clear", None);
    assert_eq!(st, 200);
    assert_eq!(
        c.post("GetAllDataV2", json!({"banksRowVersion": 0})).status,
        200
    );
    let (_, v) = admin_call(&base, "GET", "requests", None);
    assert!(v["data"].as_array().unwrap().len() >= 10);

    // Disabled by config.
    let off = RunningServer::start(common::documented()).unwrap();
    let (st, _) = admin_call(&off.base_url(), "GET", "counter", None);
    assert_eq!(st, 404);
}
