//! Talking to a real server over loopback HTTP when it misbehaves: tokens
//! that expire mid-sync, refused logins, 429 with both `Retry-After` forms,
//! 503 storms that end and that do not, connections dropped before and after
//! a save was applied, responses cut in the middle, a plain `http://` URL to
//! a remote host. Retry delays are configured short; nothing asserts on time.

use std::time::Duration;

use rowsync::{ConnectionState, Credentials, Engine, Error};
use rowsync_e2e::*;
use rowsync_refserver::{Fault, FaultBody, RetryAfter, ServerConfig};
use serde_json::json;

fn order(e: &Engine, customer: i64) {
    e.write(|w| {
        let o = w.create("orders", json!({"customerId": customer, "totalAmount": 10}))?;
        w.create(
            "orderDetails",
            json!({"orderClientId": client_id(&o, "order"), "productId": 1, "quantity": 1, "unitPrice": 10}),
        )?;
        Ok(())
    })
    .unwrap();
}

fn shop(config: ServerConfig) -> rowsync_refserver::RunningServer {
    let s = start(config);
    s.server().admin().seed_products(300).unwrap();
    s.server().admin().seed_persons(20).unwrap();
    s
}

#[test]
fn a_full_sync_over_http_and_the_sync_log() {
    let server = shop(server_config());
    let db = TempDb::new("http-full");
    let e = engine(&db, &server.base_url());
    struct Lines(std::sync::Mutex<Vec<String>>);
    impl rowsync::LogSink for Lines {
        fn log(&self, level: rowsync::LogLevel, target: &str, message: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{level:?} {target} {message}"));
        }
    }
    let lines = std::sync::Arc::new(Lines(Default::default()));
    e.set_log_sink(Some(lines.clone()), rowsync::LogLevel::Debug);
    order(&e, 1);
    let r = e.sync().unwrap();
    assert_eq!(r.collections["products"].applied, 300);
    {
        let lines = lines.0.lock().unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("rowsync::http SaveAllDataV2 attempt 1 status 200")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("Info rowsync::sync sync done")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .all(|l| !l.contains("pass1") && !l.contains("eyJ")),
            "no secrets: {lines:?}"
        );
    }
    assert_eq!(r.pushed, 2);
    assert_eq!(server.server().admin().count("orders"), 1);
    assert_eq!(e.status().unwrap().connection, ConnectionState::Online);
    let log = e.sync_log(100).unwrap();
    let endpoints: Vec<&str> = log.iter().map(|l| l.endpoint.as_str()).collect();
    assert!(
        endpoints.contains(&"LoginV2")
            && endpoints.contains(&"GetAllDataV2")
            && endpoints.contains(&"SaveAllDataV2")
    );
    assert!(log
        .iter()
        .all(|l| l.tracking_id.is_some() && l.status == Some(200)));
    // A new process starts with how the last sync ended.
    drop(e);
    let reopened = Engine::open(&db.0).unwrap();
    assert_eq!(
        reopened.status().unwrap().connection,
        ConnectionState::Online
    );
    assert_eq!(reopened.last_report().unwrap().unwrap().pushed, 2);
    drop(reopened);
    // Nothing secret is in the database.
    let bytes = std::fs::read(&db.0).unwrap();
    let wal = std::fs::read(format!("{}-wal", db.0.display())).unwrap_or_default();
    for hay in [&bytes, &wal] {
        assert!(!hay.windows(5).any(|w| w == b"pass1"), "password stored");
        assert!(!hay.windows(4).any(|w| w == b"eyJh"), "token stored");
    }
}

#[test]
fn a_token_that_expires_mid_sync_is_renewed() {
    let server = shop(server_config());
    let db = TempDb::new("expire");
    let e = engine(&db, &server.base_url());
    let mut s = e.settings().unwrap();
    s.page_size = 50;
    e.configure(s).unwrap();
    server
        .server()
        .faults()
        .inject(Some("GetAllDataV2"), Fault::Latency(Duration::ZERO), 2);
    server
        .server()
        .faults()
        .inject(Some("GetAllDataV2"), Fault::ExpireToken, 1);
    let r = e.sync().unwrap();
    assert_eq!(r.collections["products"].applied, 300);
    let logins = e
        .sync_log(1000)
        .unwrap()
        .iter()
        .filter(|l| l.endpoint == "LoginV2")
        .count();
    assert_eq!(logins, 2);
}

#[test]
fn short_lived_tokens_are_renewed_before_they_expire() {
    let server = shop(ServerConfig {
        token_ttl: Duration::from_secs(1),
        ..server_config()
    });
    let db = TempDb::new("ttl");
    let e = engine(&db, &server.base_url());
    e.sync().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    order(&e, 1);
    e.sync().unwrap();
    assert_eq!(server.server().admin().count("orders"), 1);
}

#[test]
fn a_refused_login_stops_at_once() {
    let server = shop(server_config());
    let db = TempDb::new("1002");
    let e = engine(&db, &server.base_url());
    order(&e, 1);
    e.set_credentials(Credentials {
        password: "wrong".into(),
        ..credentials()
    })
    .unwrap();
    let err = e.sync().unwrap_err();
    assert!(
        matches!(err, Error::AuthFailed { code: 1002, .. }),
        "{err:?}"
    );
    assert_eq!(
        e.sync_log(100).unwrap().len(),
        1,
        "no retry of a refused login"
    );
    assert_eq!(e.status().unwrap().connection, ConnectionState::AuthFailed);
    e.set_credentials(Credentials {
        database_id: 1,
        ..credentials()
    })
    .unwrap();
    assert!(matches!(
        e.sync().unwrap_err(),
        Error::AuthFailed { code: 1001, .. }
    ));
    assert_eq!(e.status().unwrap().counts.pending, 2, "nothing lost");
    e.set_credentials(credentials()).unwrap();
    e.sync().unwrap();
    assert_eq!(e.status().unwrap().counts.pending, 0);
}

#[test]
fn rate_limits_with_both_retry_after_forms_are_honoured() {
    let server = shop(server_config());
    let db = TempDb::new("429");
    let e = engine(&db, &server.base_url());
    e.sync().unwrap();
    order(&e, 1);
    server.server().faults().inject(
        Some("SaveAllDataV2"),
        Fault::RateLimit {
            retry_after: RetryAfter::Seconds(0),
        },
        1,
    );
    server.server().faults().inject(
        Some("SaveAllDataV2"),
        Fault::RateLimit {
            retry_after: RetryAfter::HttpDate(0),
        },
        1,
    );
    e.sync().unwrap();
    assert_eq!(server.server().admin().count("orders"), 1);
    let statuses: Vec<Option<u16>> = e
        .sync_log(100)
        .unwrap()
        .iter()
        .filter(|l| l.endpoint == "SaveAllDataV2")
        .map(|l| l.status)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == Some(429)).count(), 2);
    // A Retry-After longer than the engine will wait ends the sync as rate limited.
    order(&e, 1);
    server.server().faults().inject(
        Some("SaveAllDataV2"),
        Fault::RateLimit {
            retry_after: RetryAfter::Seconds(3600),
        },
        1,
    );
    assert!(matches!(
        e.sync().unwrap_err(),
        Error::RateLimited {
            retry_after: Some(_),
            ..
        }
    ));
    assert_eq!(e.status().unwrap().counts.pending, 2);
}

#[test]
fn a_503_storm_that_ends_and_one_that_does_not() {
    let server = shop(server_config());
    let db = TempDb::new("503");
    let e = engine(&db, &server.base_url());
    e.sync().unwrap();
    order(&e, 1);
    for body in [FaultBody::Empty, FaultBody::Html, FaultBody::TruncatedJson] {
        server
            .server()
            .faults()
            .inject(Some("SaveAllDataV2"), Fault::Status(503, body), 1);
    }
    e.sync().unwrap();
    assert_eq!(server.server().admin().count("orders"), 1);
    order(&e, 1);
    server
        .server()
        .faults()
        .inject(None, Fault::Status(503, FaultBody::Html), 1_000);
    let err = e.sync().unwrap_err();
    assert!(matches!(err, Error::Server { status: 503, .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(e.status().unwrap().counts.pending, 2, "nothing lost");
    server.server().faults().clear();
    e.sync().unwrap();
    assert_eq!(server.server().admin().count("orders"), 2);
}

#[test]
fn a_server_that_is_gone_is_offline_and_back_it_simply_works() {
    let server = shop(server_config());
    let url = server.base_url();
    let addr = server.addr();
    let db = TempDb::new("gone");
    let data = TempDb::new("gone-server");
    drop(server);
    let e = engine(&db, &url);
    order(&e, 1);
    let err = e.sync().unwrap_err();
    assert!(matches!(err, Error::Offline { .. }), "{err:?}");
    assert!(matches!(
        e.status().unwrap().connection,
        ConnectionState::Offline { .. }
    ));
    // The server comes back on the same address.
    let back = rowsync_refserver::RunningServer::start_on(
        ServerConfig {
            data: Some(data.0.clone()),
            ..server_config()
        },
        &addr.to_string(),
    )
    .unwrap();
    back.server().admin().seed_persons(2).unwrap();
    back.server().admin().seed_products(2).unwrap();
    e.sync().unwrap();
    assert_eq!(back.server().admin().count("orders"), 1);
    assert_eq!(e.status().unwrap().connection, ConnectionState::Online);
}

#[test]
fn connections_dropped_before_and_after_a_save_never_duplicate() {
    let server = shop(server_config());
    let db = TempDb::new("drops");
    let e = engine(&db, &server.base_url());
    e.sync().unwrap();
    order(&e, 1);
    server
        .server()
        .faults()
        .inject(Some("SaveAllDataV2"), Fault::DropBeforeResponse, 1);
    server
        .server()
        .faults()
        .inject(Some("SaveAllDataV2"), Fault::LoseResponseAfterApply, 1);
    server
        .server()
        .faults()
        .inject(Some("SaveAllDataV2"), Fault::CutResponse, 1);
    e.sync().unwrap();
    assert_eq!(server.server().admin().count("orders"), 1);
    assert_eq!(server.server().admin().count("orderDetails"), 1);
    assert_eq!(e.status().unwrap().counts.pending, 0);
    let saves = e
        .sync_log(100)
        .unwrap()
        .iter()
        .filter(|l| l.endpoint == "SaveAllDataV2")
        .count();
    assert_eq!(saves, 4);
}

#[test]
fn a_pull_response_cut_in_the_middle_is_retried() {
    let server = shop(server_config());
    let db = TempDb::new("cut");
    let e = engine(&db, &server.base_url());
    server
        .server()
        .faults()
        .inject(Some("GetAllDataV2"), Fault::CutResponse, 2);
    let r = e.sync().unwrap();
    assert_eq!(r.collections["products"].applied, 300);
    assert_eq!(e.count("products", false).unwrap(), 300);
}

#[test]
fn a_plain_http_url_to_a_remote_host_is_refused() {
    let db = TempDb::new("plain");
    let e = Engine::open(&db.0).unwrap();
    let err = e
        .configure(settings("http://mahak.example.com/API/v3"))
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    e.configure(settings("https://mahak.example.com/API/v3"))
        .unwrap();
    e.configure(settings("http://localhost:1/API/v3")).unwrap();
}

#[test]
fn the_bare_login_answer_is_accepted() {
    let server = shop(ServerConfig {
        bare_login: true,
        ..server_config()
    });
    let db = TempDb::new("bare");
    let e = engine(&db, &server.base_url());
    e.sync().unwrap();
    assert_eq!(e.count("persons", false).unwrap(), 20);
}

#[test]
fn fifty_devices_sync_at_once() {
    let server = shop(server_config());
    let url = server.base_url();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let db = TempDb::new(&format!("dev{i}"));
                let e = engine(&db, &url);
                order(&e, 1 + (i % 20));
                e.sync().unwrap();
                e.status().unwrap().counts.pending
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 0);
    }
    assert_eq!(server.server().admin().count("orders"), 50);
    assert_eq!(server.server().admin().count("orderDetails"), 50);
}

#[test]
fn shutdown_interrupts_a_backoff() {
    let server = shop(server_config());
    let db = TempDb::new("shutdown");
    let e = std::sync::Arc::new(engine(&db, &server.base_url()));
    let mut s = e.settings().unwrap();
    s.base_delay_ms = 60_000;
    s.max_delay_ms = 60_000;
    s.max_attempts = 3;
    e.configure(s).unwrap();
    server
        .server()
        .faults()
        .inject(None, Fault::Status(503, FaultBody::Empty), 100);
    let e2 = e.clone();
    let t = std::thread::spawn(move || e2.sync());
    std::thread::sleep(Duration::from_millis(200));
    e.shutdown();
    let r = t.join().unwrap();
    assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
}
