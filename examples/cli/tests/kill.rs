//! Invariant 10 with a real kill: a `rowsync sync` process is killed with
//! SIGKILL at arbitrary moments of a sync (while it pulls pages, while it
//! pushes batches), several times in a row; then a last sync runs to the end.
//! Nothing the app wrote may be lost or reach the server twice, and the
//! replica must equal the server.

use std::process::{Command, Stdio};
use std::time::Duration;

use rowsync::{Engine, RecordId, Settings};
use rowsync_refserver::{RunningServer, ServerConfig};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_rowsync");

#[test]
fn a_sync_killed_at_random_moments_loses_and_doubles_nothing() {
    // Every request is slowed down, so a sync takes a second or two and the
    // kills land inside it.
    let server = RunningServer::start(ServerConfig {
        faults: rowsync_refserver::FaultConfig {
            latency_rate: 1.0,
            latency: Duration::from_millis(25),
            ..Default::default()
        },
        ..ServerConfig::default()
    })
    .unwrap();
    server.server().admin().seed_products(20_000).unwrap();
    server.server().admin().seed_persons(200).unwrap();
    let dir = std::env::temp_dir().join(format!("rowsync-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("replica.db");

    // Offline sales, written before any sync; small batches so the push
    // takes many requests and a kill can land between them.
    let mut orders = Vec::new();
    {
        let e = Engine::open(&db).unwrap();
        e.configure(Settings {
            base_url: server.base_url(),
            username: "user1".into(),
            database_id: 1001,
            package_number: 2002,
            page_size: 2_000,
            batch_size: 4,
            ..Settings::default()
        })
        .unwrap();
        for i in 0..60 {
            let oc = e
                .write(|w| {
                    let o = w.create(
                        "orders",
                        json!({"orderType": 201, "personId": 1 + i % 100, "visitorId": 31}),
                    )?;
                    let oc = o["orderClientId"].as_i64().unwrap_or_default();
                    w.create(
                        "orderDetails",
                        json!({"orderClientId": oc, "productDetailId": 1 + i % 50, "count1": 1, "price": 10}),
                    )?;
                    Ok(oc)
                })
                .unwrap();
            orders.push(oc);
        }
    }

    let mut rng = fastrand_seed();
    let mut killed = 0;
    for round in 0..8 {
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(&db)
            .arg("sync")
            .env("ROWSYNC_PASSWORD", "pass1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + next(&mut rng) % 300));
        let _ = child.kill(); // SIGKILL: no destructor, no cleanup
        let status = child.wait().unwrap();
        if std::os::unix::process::ExitStatusExt::signal(&status) == Some(9) {
            killed += 1;
        }
        eprintln!("round {round}: {status:?}");
    }
    assert!(killed >= 4, "only {killed} of 8 syncs were killed mid-way");
    server.server().faults().set_config(Default::default());

    let out = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .arg("sync")
        .env("ROWSYNC_PASSWORD", "pass1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let e = Engine::open(&db).unwrap();
    let st = e.status().unwrap();
    assert_eq!((st.counts.pending, st.counts.parked), (0, 0));
    let admin = server.server().admin();
    assert_eq!(admin.count("orders"), 60, "every order exactly once");
    assert_eq!(admin.count("orderDetails"), 60);
    assert_eq!(e.count("products", false).unwrap(), 20_000);
    assert_eq!(e.count("people", false).unwrap(), 200);
    assert_eq!(st.counts.in_doubt, 0);
    for oc in orders {
        let local = e
            .get("orders", RecordId::Client(oc))
            .unwrap()
            .expect("order kept");
        let id = local["orderId"].as_i64().expect("server id mapped");
        assert_eq!(
            admin.get("orders", id).unwrap()["orderClientId"].as_i64(),
            Some(oc)
        );
    }
    drop(e);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small xorshift generator seeded from the clock (the moments of the
/// kills vary from run to run; every moment must be safe).
fn fastrand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
