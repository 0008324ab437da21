//! Invariant 10 with a real kill: a `rowsync sync` process is killed with
//! SIGKILL at arbitrary moments of a sync (while it pulls pages, while it
//! pushes batches), several times in a row; then a last sync runs to the end.
//! Nothing the app wrote may be lost or reach the server twice, and the
//! replica must equal the server. The server speaks the real dialect, which
//! refuses a resent create: a save killed before its answer arrived leaves
//! creates in doubt, and only a pull may settle them.

use std::process::{Command, Stdio};
use std::time::Duration;

use rowsync::{Engine, RecordId, Settings};
use rowsync_refserver::{RunningServer, ServerConfig};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_rowsync");

/// Enough products (each with its sellable detail and the visitor's stock)
/// for the first pull to take several pages and several rounds.
const PRODUCTS: usize = 5_000;

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
    server.server().admin().seed_products(PRODUCTS).unwrap();
    server.server().admin().seed_persons(200).unwrap();
    let dir = std::env::temp_dir().join(format!("rowsync-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("replica.db");

    let visitor = ServerConfig::default().visitor_id;
    // Offline sales, written before any sync; small batches so the push
    // takes many requests and kills land inside and between them.
    let mut orders = Vec::new();
    {
        let e = Engine::open(&db).unwrap();
        e.configure(Settings {
            base_url: server.base_url(),
            username: "user1".into(),
            database_id: 1001,
            package_number: 2002,
            // Small pages: the first pull takes dozens of requests (a second
            // or more), so several kills land inside it even on a fast
            // machine where the pipelined pull applies as fast as it fetches.
            page_size: 250,
            batch_size: 2,
            ..Settings::default()
        })
        .unwrap();
        for i in 0..60 {
            let oc = e
                .write(|w| {
                    let o = w.create(
                        "orders",
                        json!({"orderType": 201, "personId": 1 + i % 100, "visitorId": visitor}),
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

    let admin = server.server().admin();
    let mut rng = fastrand_seed();
    // Kills are counted by where they landed: before any order reached the
    // server (login, pull), or in the middle of the push (some orders there,
    // not all); and whether one left creates in doubt (a save sent, its
    // answer never read). The rounds go on until each was seen a few times.
    let (mut in_pull, mut mid_push, mut doubts_seen) = (0, 0, 0);
    // Kills before the push that landed between pages of the first pull
    // (some products applied, not all).
    let mut pages_then_killed = 0;
    for round in 0..60 {
        if in_pull >= 3 && pages_then_killed >= 1 && mid_push >= 4 && doubts_seen >= 2 {
            break;
        }
        let before = admin.count("orders");
        if before == 60 {
            break;
        }
        let mut child = Command::new(BIN)
            .arg("--db")
            .arg(&db)
            .arg("sync")
            .env("ROWSYNC_PASSWORD", "pass1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Short rounds until a few kills have landed in the pull (each round
        // resumes it from its last page), then longer ones so it can end;
        // once the push has begun, short again, so several kills land
        // inside it before it ends.
        let window = match (before, in_pull) {
            (0, n) if n < 3 => 120,
            (0, _) => 300,
            _ => 100,
        };
        std::thread::sleep(Duration::from_millis(20 + next(&mut rng) % window));
        let _ = child.kill(); // SIGKILL: no destructor, no cleanup
        let status = child.wait().unwrap();
        let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
        let after = admin.count("orders");
        let replica = Engine::open(&db).unwrap();
        let in_doubt = replica.status().unwrap().counts.in_doubt;
        let products = replica.count("products", false).unwrap();
        drop(replica);
        if in_doubt > 0 {
            doubts_seen += 1;
        }
        if killed && after == 0 {
            in_pull += 1;
            if products > 0 && products < PRODUCTS as u64 {
                pages_then_killed += 1;
            }
        } else if killed && after < 60 {
            mid_push += 1;
        }
        eprintln!(
            "round {round}: {status:?}, orders on the server {before} -> {after}, in doubt {in_doubt}, products {products}"
        );
    }
    eprintln!(
        "kills: {in_pull} before the push ({pages_then_killed} mid-pull), {mid_push} mid-push; {doubts_seen} left creates in doubt"
    );
    assert!(in_pull >= 2, "only {in_pull} kills landed before the push");
    assert!(
        pages_then_killed >= 1,
        "no kill landed between pages of the first pull"
    );
    assert!(mid_push >= 3, "only {mid_push} kills landed mid-push");
    assert!(
        doubts_seen >= 1,
        "no kill landed while a save was on its way: nothing was in doubt"
    );
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
    assert_eq!(
        (st.counts.pending, st.counts.parked),
        (0, 0),
        "dead letters: {:?}",
        e.dead_letters().unwrap()
    );
    assert_eq!(admin.count("orders"), 60, "every order exactly once");
    assert_eq!(admin.count("orderDetails"), 60);
    assert_eq!(e.count("products", false).unwrap(), PRODUCTS as u64);
    assert_eq!(e.count("productDetails", false).unwrap(), PRODUCTS as u64);
    assert_eq!(e.count("visitorProducts", false).unwrap(), PRODUCTS as u64);
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
