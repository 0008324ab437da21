//! A shared device changing hands with the `rowsync` binary (issue 27,
//! part 1), against the reference server where user1 and user2 are each a
//! visitor of their own: `init --username` hands the device over, `sync`
//! sends only the signed-in user's orders and stops, exit 1, naming the
//! user left behind and what to do; `pending export` / `pending discard`
//! keep and drop that user's orders; and real processes SIGKILLed during
//! the hand-over's syncs lose nothing and double nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rowsync_refserver::{FaultConfig, RunningServer, ServerConfig};
use serde_json::{json, Value};

mod common;
use common::ok;

const BIN: &str = env!("CARGO_BIN_EXE_rowsync");
const VISITOR_1: i64 = 31;
const VISITOR_2: i64 = 32;

fn server(faults: FaultConfig) -> RunningServer {
    let server = RunningServer::start(ServerConfig {
        users: vec![
            ("user1".into(), "pass1".into()),
            ("user2".into(), "pass2".into()),
        ],
        user_visitors: vec![("user1".into(), VISITOR_1), ("user2".into(), VISITOR_2)],
        faults,
        ..ServerConfig::default()
    })
    .expect("server");
    server.server().admin().seed_products(3).expect("products");
    server.server().admin().seed_persons(2).expect("people");
    server
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rowsync-handover-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn password(user: &str) -> &'static str {
    if user == "user2" {
        "pass2"
    } else {
        "pass1"
    }
}

fn run(db: &Path, user: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .env("ROWSYNC_PASSWORD", password(user))
        .env_remove("ROWSYNC_DB")
        .stdin(Stdio::null())
        .output()
        .expect("rowsync runs")
}

/// `init` as `user` (the first one names the server too).
fn sign_in(db: &Path, server: &RunningServer, user: &str) {
    ok(&run(
        db,
        user,
        &[
            "init",
            "--url",
            &server.base_url(),
            "--username",
            user,
            "--database-id",
            "1001",
            "--package-number",
            "2002",
            "--collections",
            "people,orders",
        ],
    ));
}

/// Puts an order; returns its client id.
fn order(db: &Path, user: &str, person: i64, text: &str) -> i64 {
    let body = json!({"orderType": 201, "personId": person, "description": text}).to_string();
    let out = ok(&run(db, user, &["--json", "put", "orders", &body]));
    let v: Value = serde_json::from_str(&out).expect("put prints the record");
    v["orderClientId"].as_i64().expect("client id")
}

/// The server's orders by client id.
fn on_server(server: &RunningServer) -> BTreeMap<i64, Vec<Value>> {
    let mut out: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for o in server.server().admin().dump("orders") {
        if let Some(cid) = o["orderClientId"].as_i64().filter(|&c| c != 0) {
            out.entry(cid).or_default().push(o);
        }
    }
    out
}

fn person(server: &RunningServer) -> i64 {
    server.server().admin().dump("people")[0]["personId"]
        .as_i64()
        .expect("a person")
}

#[test]
fn init_with_another_user_hands_the_device_over() {
    let server = server(FaultConfig::default());
    let dir = scratch("cli");
    let db = dir.join("r.db");
    let p = person(&server);
    sign_in(&db, &server, "user1");
    ok(&run(&db, "user1", &["sync"]));
    let a = order(&db, "user1", p, "user1's sale");
    sign_in(&db, &server, "user2");
    let b = order(&db, "user2", p, "user2's sale");
    let status = ok(&run(&db, "user2", &["status"]));
    assert!(status.contains("by user1: 1 pending"), "{status}");

    let out = run(&db, "user2", &["sync"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("1 change(s) made by `user1`"), "{err}");
    assert!(err.contains("init --username user1"), "{err}");
    assert!(err.contains("pending export --user user1"), "{err}");
    let orders = on_server(&server);
    assert!(!orders.contains_key(&a));
    assert_eq!(orders[&b].len(), 1);
    let b_id = orders[&b][0]["orderId"].as_i64().expect("id");
    assert_eq!(
        server.server().admin().booked_visitor("orders", b_id),
        Some(VISITOR_2)
    );
    let why = ok(&run(&db, "user2", &["why", "orders", &format!("c:{a}")]));
    assert!(why.contains("waiting for its user"), "{why}");

    // A discard before an export is refused, and drops nothing.
    let out = run(&db, "user2", &["pending", "discard", "--user", "user1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pending export --user user1"));
    let export = dir.join("user1.json");
    ok(&run(
        &db,
        "user2",
        &[
            "pending",
            "export",
            "--user",
            "user1",
            "--out",
            export.to_str().expect("utf-8"),
        ],
    ));
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&export).expect("export")).expect("json");
    assert_eq!(v["user"], "user1");
    assert_eq!(v["count"], 1);
    assert_eq!(v["changes"][0]["collection"], "orders");
    assert_eq!(v["changes"][0]["record"]["orderClientId"], a);
    assert_eq!(v["changes"][0]["visitor_id"], VISITOR_1);

    // user1 signs in again instead: the order goes once, under user1.
    sign_in(&db, &server, "user1");
    ok(&run(&db, "user1", &["sync"]));
    let orders = on_server(&server);
    assert_eq!(orders[&a].len(), 1);
    let a_id = orders[&a][0]["orderId"].as_i64().expect("id");
    assert_eq!(
        server.server().admin().booked_visitor("orders", a_id),
        Some(VISITOR_1)
    );

    // Another of user1's sales, left behind for good: exported, discarded.
    let gone = order(&db, "user1", p, "never sent");
    sign_in(&db, &server, "user2");
    ok(&run(
        &db,
        "user2",
        &["pending", "export", "--user", "user1", "--out", "-"],
    ));
    let out = ok(&run(
        &db,
        "user2",
        &["pending", "discard", "--user", "user1"],
    ));
    assert!(out.contains("discarded 1 change(s) of `user1`"), "{out}");
    ok(&run(&db, "user2", &["sync"]));
    assert!(!on_server(&server).contains_key(&gone));
    let status: Value =
        serde_json::from_str(&ok(&run(&db, "user2", &["--json", "status"]))).expect("json");
    assert_eq!(status["discarded"], 1);

    // wipe --force is the only way to drop them unexported, and says whose.
    sign_in(&db, &server, "user1");
    order(&db, "user1", p, "wiped");
    sign_in(&db, &server, "user2");
    assert_eq!(run(&db, "user2", &["wipe"]).status.code(), Some(1));
    let out = ok(&run(&db, "user2", &["wipe", "--force"]));
    assert!(
        out.contains("1 unsent change(s) dropped: 1 of user1"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Syncs of a device changing hands, SIGKILLed at random moments (some
/// between user2's push and the stop): at the end every order put is on
/// the server exactly once, booked under the visitor of the user who put
/// it. `ROWSYNC_HANDOVER_KILLS` rounds (12 by default, two syncs each),
/// moments from `ROWSYNC_HANDOVER_SEED` (printed; random by default).
#[test]
fn a_kill_during_the_hand_over_loses_nothing() {
    let rounds = std::env::var("ROWSYNC_HANDOVER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12u64);
    let seed = std::env::var("ROWSYNC_HANDOVER_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!(
        "hand-over kills: seed {seed} (replay: ROWSYNC_HANDOVER_SEED={seed} ROWSYNC_HANDOVER_KILLS={rounds})"
    );
    let mut rng = fastrand::Rng::with_seed(seed);
    let server = server(FaultConfig {
        latency_rate: 1.0,
        latency: Duration::from_millis(3),
        ..FaultConfig::default()
    });
    let dir = scratch("kill");
    let db = dir.join("r.db");
    let p = person(&server);
    sign_in(&db, &server, "user1");
    ok(&run(&db, "user1", &["sync"]));
    // Each order put, with the user who put it.
    let mut put: Vec<(i64, &str)> = Vec::new();
    let mut killed = 0;
    for i in 0..rounds {
        for user in ["user1", "user2"] {
            sign_in(&db, &server, user);
            put.push((order(&db, user, p, &format!("{user} #{i}")), user));
            let mut child = Command::new(BIN)
                .arg("--db")
                .arg(&db)
                .arg("sync")
                .env("ROWSYNC_PASSWORD", password(user))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sync starts");
            std::thread::sleep(Duration::from_micros(rng.u64(0..120_000)));
            let _ = child.kill();
            let status = child.wait().expect("sync ends");
            if std::os::unix::process::ExitStatusExt::signal(&status) == Some(9) {
                killed += 1;
            } else {
                assert_ne!(status.code(), Some(101), "sync panicked");
            }
        }
    }
    println!("hand-over kills: {killed} of {} syncs killed", rounds * 2);
    // Each user signs in and syncs to the end.
    for user in ["user1", "user2", "user1"] {
        sign_in(&db, &server, user);
        let _ = run(&db, user, &["sync"]);
    }
    sign_in(&db, &server, "user2");
    ok(&run(&db, "user2", &["sync"]));
    let orders = on_server(&server);
    for (cid, user) in &put {
        let copies = orders.get(cid).map_or(0, Vec::len);
        assert_eq!(copies, 1, "order c:{cid} of {user} is on the server once");
        let id = orders[cid][0]["orderId"].as_i64().expect("id");
        let visitor = if *user == "user1" {
            VISITOR_1
        } else {
            VISITOR_2
        };
        assert_eq!(
            server.server().admin().booked_visitor("orders", id),
            Some(visitor),
            "order c:{cid} of {user}"
        );
    }
    let status: Value =
        serde_json::from_str(&ok(&run(&db, "user2", &["--json", "status"]))).expect("json");
    assert_eq!(status["counts"]["pending"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}
