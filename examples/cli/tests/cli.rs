//! End-to-end tests of the `rowsync` binary: each test starts the reference
//! server on a loopback port (in the real Mahak dialect unless it says
//! otherwise), runs the built binary against it as a user would (password
//! through the environment or stdin), and checks the exit code and the human
//! or JSON output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rowsync_refserver::{Dialect, Fault, RunningServer, ServerConfig};
use serde_json::Value;

mod common;
use common::{json, ok};

const BIN: &str = env!("CARGO_BIN_EXE_rowsync");

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "rowsync-cli-test-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("replica.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn shop() -> RunningServer {
    let server = RunningServer::start(ServerConfig::default()).unwrap();
    server.server().admin().seed_products(25).unwrap();
    server.server().admin().seed_persons(10).unwrap();
    server
}

/// Runs `rowsync --db DB args...` with the right password in the environment.
fn rowsync(db: &Path, args: &[&str]) -> Output {
    rowsync_env(db, args, Some("pass1"), None)
}

fn rowsync_env(db: &Path, args: &[&str], password: Option<&str>, stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--db").arg(db).args(args);
    cmd.env_remove("ROWSYNC_PASSWORD").env_remove("ROWSYNC_DB");
    if let Some(p) = password {
        cmd.env("ROWSYNC_PASSWORD", p);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// Asserts a failure with exactly one line on stderr; returns that line.
fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "one line on stderr, got: {err}");
    assert!(err.starts_with("rowsync: "), "{err}");
    err
}

fn init(db: &Path, server: &RunningServer) {
    init_with(db, server, &[]);
}

fn init_with(db: &Path, server: &RunningServer, extra: &[&str]) {
    let url = server.base_url();
    let mut args = vec![
        "init",
        "--url",
        &url,
        "--username",
        "user1",
        "--database-id",
        "1001",
        "--package-number",
        "2002",
    ];
    args.extend_from_slice(extra);
    let out = rowsync(db, &args);
    assert!(ok(&out).contains("configured"));
}

/// The id of the first `collection` record in the replica.
fn first_id(db: &Path, collection: &str, field: &str) -> i64 {
    let list = json(&rowsync(
        db,
        &["list", collection, "--limit", "1", "--json"],
    ));
    list[0][field].as_i64().expect("a pulled record has its id")
}

#[test]
fn init_put_sync_list_status() {
    let server = shop();
    let scratch = Scratch::new("flow");
    let db = scratch.db();
    init(&db, &server);

    // First sync pulls the shop.
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert_eq!(report["collections"]["products"]["pulled"], 25);
    assert_eq!(report["collections"]["productDetails"]["pulled"], 25);
    assert_eq!(report["collections"]["people"]["pulled"], 10);
    assert!(report["error"].is_null());
    // The login's session is kept and shown.
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["dialect"], "mahak");
    let visitor = status["session"]["visitor_id"].as_i64().expect("a visitor");
    assert_eq!(visitor, ServerConfig::default().visitor_id);
    assert_eq!(status["session"]["database_id"], 1001);
    assert!(status["session"]["sync_id"].as_i64().is_some(), "{status}");
    assert!(status["session"]["user_title"].is_string(), "{status}");
    assert!(status["session"]["server_time"].is_string(), "{status}");
    assert_eq!(status["counts"]["in_doubt"], 0);
    let text = ok(&rowsync(&db, &["status"]));
    assert!(text.contains(&format!("visitor {visitor}")), "{text}");

    // A local sale (an order of type 201), then a sync that pushes it.
    let person = first_id(&db, "people", "personId");
    let order = format!(
        r#"{{"orderType": 201, "visitorId": {visitor}, "personId": {person}, "Description": "till 1"}}"#
    );
    let stored = json(&rowsync(&db, &["put", "orders", &order, "--json"]));
    assert_eq!(stored["description"], "till 1", "stored in camelCase");
    let client_id = stored["orderClientId"].as_i64().unwrap();
    assert!(stored["orderId"].is_null());
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["counts"]["pending"], 1);

    // Password on stdin this time.
    let report = json(&rowsync_env(
        &db,
        &["sync", "--json"],
        None,
        Some("pass1\n"),
    ));
    assert_eq!(report["pushed"], 1);
    let mapping = &report["id_mappings"][0];
    assert_eq!(mapping[0], "orders");
    assert_eq!(mapping[1], client_id);
    let server_id = mapping[2].as_i64().unwrap();
    assert_eq!(
        server.server().admin().id_for_client("orders", client_id),
        Some(server_id)
    );

    // list --json is the records as stored.
    let orders = json(&rowsync(&db, &["list", "orders", "--json"]));
    let orders = orders.as_array().unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["orderId"], server_id);
    assert_eq!(orders[0]["orderType"], 201);
    let products = json(&rowsync(
        &db,
        &["list", "products", "--limit", "7", "--json"],
    ));
    assert_eq!(products.as_array().unwrap().len(), 7);

    // get by server id and by client id agree.
    let by_server = json(&rowsync(&db, &["get", "orders", &server_id.to_string()]));
    let by_client = json(&rowsync(&db, &["get", "orders", &format!("c:{client_id}")]));
    assert_eq!(by_server, by_client);

    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["counts"]["pending"], 0);
    assert_eq!(status["counts"]["dead_letters"], 0);
    assert!(status["last_sync"].is_string());
    assert!(status["last_error"].is_null());
    assert!(status["checkpoints"].as_array().unwrap().len() >= 2);

    // Human output reads as such.
    let text = ok(&rowsync(&db, &["status"]));
    assert!(text.contains("0 pending change(s)"), "{text}");
    let log = ok(&rowsync(&db, &["log"]));
    assert!(log.contains("SaveAllData"), "{log}");

    // Delete, then sync: the server has it deleted.
    ok(&rowsync(&db, &["delete", "orders", &server_id.to_string()]));
    json(&rowsync(&db, &["sync", "--json"]));
    let on_server = server.server().admin().get("orders", server_id).unwrap();
    assert_eq!(on_server["deleted"], true);
    let all = json(&rowsync(
        &db,
        &["list", "orders", "--include-deleted", "--json"],
    ));
    assert_eq!(all.as_array().unwrap().len(), 1);
    let live = json(&rowsync(&db, &["list", "orders", "--json"]));
    assert_eq!(live.as_array().unwrap().len(), 0);
}

#[test]
fn refused_order_goes_to_the_dead_letter_queue() {
    let server = shop();
    let scratch = Scratch::new("dlq");
    let db = scratch.db();
    init(&db, &server);
    let first = json(&rowsync(&db, &["sync", "--json"]));
    assert!(first["pulled_collections"]
        .as_array()
        .unwrap()
        .contains(&"personGroups".into()));
    // Reference data waits for its schedule; `sync --all` pulls it now.
    let again = json(&rowsync(&db, &["sync", "--json"]));
    assert!(!again["pulled_collections"]
        .as_array()
        .unwrap()
        .contains(&"personGroups".into()));
    let all = json(&rowsync(&db, &["sync", "--all", "--json"]));
    assert!(all["pulled_collections"]
        .as_array()
        .unwrap()
        .contains(&"personGroups".into()));
    // A signed push hint makes them due at once; a forged one is refused.
    let payload = scratch.0.join("hint.json");
    std::fs::write(
        &payload,
        r#"{"id":"h1","collections":["personGroups"],"sentAt":"2026-11-24T10:00:00Z"}"#,
    )
    .unwrap();
    let sig = rowsync::sign_hint(b"s3cret", &std::fs::read(&payload).unwrap()).unwrap();
    let hint = |sig: &str| {
        let mut c = Command::new(BIN);
        c.arg("--db")
            .arg(&db)
            .args(["hint", payload.to_str().unwrap(), sig, "--json"]);
        c.env("ROWSYNC_HINT_SECRET", "s3cret").output().unwrap()
    };
    let forged = hint(&"0".repeat(64));
    assert_eq!(forged.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&forged.stderr).contains("hint refused"));
    assert_eq!(json(&hint(&sig))["outcome"], "applied");
    assert_eq!(json(&hint(&sig))["outcome"], "duplicate");
    let due = json(&rowsync(&db, &["sync", "--json"]));
    assert!(due["pulled_collections"]
        .as_array()
        .unwrap()
        .contains(&"personGroups".into()));
    // An order for a customer the server does not know: refused per
    // record, with the server's words on `PersonId`.
    let bad = json(&rowsync(
        &db,
        &[
            "put",
            "orders",
            r#"{"orderType": 201, "personId": 999999}"#,
            "--json",
        ],
    ));
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert_eq!(report["parked"], 1, "{report}");
    let letters = json(&rowsync(&db, &["dlq", "list", "--json"]));
    let letter = &letters[0];
    assert_eq!(letter["field"], "PersonId");
    assert!(
        letter["message"].as_str().unwrap().contains("999999"),
        "{letter}"
    );
    assert_eq!(letter["changes"][0]["client_id"], bad["orderClientId"]);
    let text = ok(&rowsync(&db, &["dlq"]));
    assert!(text.contains("PersonId"), "{text}");

    // `why` says where the order stands, in words and as JSON.
    let cid = format!("c:{}", bad["orderClientId"]);
    let why = json(&rowsync(&db, &["why", "orders", &cid, "--json"]));
    assert_eq!(why["state"], "parked", "{why}");
    assert_eq!(why["dead_letter"], letter["id"]);
    let text = ok(&rowsync(&db, &["why", "orders", &cid]));
    assert!(
        text.contains("parked") && text.contains("dlq retry"),
        "{text}"
    );
    let text = ok(&rowsync(&db, &["why", "orders", "424242"]));
    assert!(text.contains("never seen"), "{text}");
    let out = rowsync(&db, &["why", "orders", "c:x"]);
    assert_eq!(out.status.code(), Some(2), "a bad id is a usage error");

    // The server's words are in the sync log too, and `status` counts the letter.
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["counts"]["dead_letters"], 1);

    // Discard: the order disappears (the server never had it).
    let id = letter["id"].as_i64().unwrap().to_string();
    ok(&rowsync(&db, &["dlq", "discard", &id]));
    let letters = json(&rowsync(&db, &["dlq", "list", "--json"]));
    assert_eq!(letters.as_array().unwrap().len(), 0);
    let orders = json(&rowsync(&db, &["list", "orders", "--json"]));
    assert_eq!(orders.as_array().unwrap().len(), 0);
    fails(&rowsync(&db, &["dlq", "retry", &id]));
}

#[test]
fn conflicts_are_listed_and_cleared() {
    let server = shop();
    let scratch = Scratch::new("conflicts");
    let db = scratch.db();
    init(&db, &server);
    json(&rowsync(&db, &["sync", "--json"]));
    // Both sides change product 1's price: products are server-wins.
    ok(&rowsync(
        &db,
        &["put", "products", r#"{"productId": 1, "price": 1}"#],
    ));
    let mut fields = serde_json::Map::new();
    fields.insert("price".into(), Value::from(2));
    server
        .server()
        .admin()
        .update_fields("products", 1, fields)
        .unwrap();
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert_eq!(report["conflicts"], 1);
    let entries = json(&rowsync(&db, &["conflicts", "--json"]));
    assert_eq!(entries[0]["collection"], "products");
    assert_eq!(entries[0]["resolution"], "server_wins");
    let product = json(&rowsync(&db, &["get", "products", "1"]));
    assert_eq!(product["price"], 2);
    assert!(ok(&rowsync(&db, &["conflicts", "--clear"])).contains("cleared 1"));
    let entries = json(&rowsync(&db, &["conflicts", "--json"]));
    assert_eq!(entries.as_array().unwrap().len(), 0);
}

#[test]
fn errors_exit_non_zero_with_one_line() {
    let server = shop();
    let scratch = Scratch::new("errors");
    let db = scratch.db();

    // No replica yet.
    let e = fails(&rowsync(&db, &["status"]));
    assert!(e.contains("init"), "{e}");
    // Usage errors.
    fails(&rowsync(&db, &["frobnicate"]));
    fails(&rowsync(&db, &["init", "--url", &server.base_url()]));
    fails(&rowsync(&db, &["init", "--password", "x"]));
    let e = fails(&rowsync(&db, &[]));
    assert!(e.contains("--help"), "{e}");

    init(&db, &server);
    fails(&rowsync(&db, &["put", "orders", "{not json"]));
    fails(&rowsync(&db, &["put", "nosuchcollection", "{}"]));
    fails(&rowsync(&db, &["put", "orders"]));
    fails(&rowsync(&db, &["get", "orders", "abc"]));
    fails(&rowsync(&db, &["get", "orders", "424242"]));
    fails(&rowsync(&db, &["list", "orders", "--limit", "many"]));
    fails(&rowsync(&db, &["dlq", "retry", "77"]));
    fails(&rowsync(&db, &["dlq", "explode"]));

    // No password, a wrong password, an unreachable server.
    let e = fails(&rowsync_env(&db, &["sync"], None, None));
    assert!(e.contains("ROWSYNC_PASSWORD"), "{e}");
    let e = fails(&rowsync_env(&db, &["sync"], Some("wrong"), None));
    assert!(e.contains("authentication failed"), "{e}");
    fails(&rowsync(&db, &["init", "--dialect", "klingon"]));
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert!(status["last_error"].is_string());

    let url = server.base_url();
    server.stop();
    let down = scratch.0.join("down.db");
    let out = rowsync(
        &down,
        &[
            "init",
            "--url",
            &url,
            "--username",
            "user1",
            "--database-id",
            "1001",
            "--package-number",
            "2002",
            "--max-attempts",
            "1",
        ],
    );
    ok(&out);
    fails(&rowsync(&down, &["sync"]));
}

/// The documented dialect, chosen at `init`, against a server speaking it.
#[test]
fn the_documented_dialect_is_one_flag_away() {
    let server = RunningServer::start(ServerConfig {
        dialect: Dialect::Documented,
        ..ServerConfig::default()
    })
    .unwrap();
    server.server().admin().seed_persons(4).unwrap();
    let scratch = Scratch::new("documented");
    let db = scratch.db();
    init_with(&db, &server, &["--dialect", "documented"]);
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert_eq!(report["collections"]["persons"]["pulled"], 4);
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["dialect"], "documented");
    assert!(status["session"].is_null());
    // A replica holding data keeps its dialect.
    let e = fails(&rowsync(&db, &["init", "--dialect", "mahak"]));
    assert!(
        e.contains("rowsync --db"),
        "the hint names the command: {e}"
    );
    assert!(e.contains("wipe"), "{e}");
    // Wiped, it switches; the settings stayed.
    let out = ok(&rowsync(&db, &["wipe"]));
    assert!(out.contains("wiped"), "{out}");
    let out = ok(&rowsync(&db, &["init", "--dialect", "mahak"]));
    assert!(out.contains("mahak dialect"), "{out}");
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["dialect"], "mahak");
    assert_eq!(status["base_url"], server.base_url());
}

/// The real server applies a save record by record: an order is saved while
/// its line (typed with a product, not a product detail) is refused. Only
/// the line waits in the dead-letter queue, with the server's words; fixed
/// and retried, it joins its order.
#[test]
fn a_partial_save_parks_only_the_refused_line() {
    let server = shop();
    let scratch = Scratch::new("partial");
    let db = scratch.db();
    init(&db, &server);
    json(&rowsync(&db, &["sync", "--json"]));
    let person = first_id(&db, "people", "personId");
    let detail = first_id(&db, "productDetails", "productDetailId");
    let order = json(&rowsync(
        &db,
        &[
            "put",
            "orders",
            &format!(r#"{{"orderType": 201, "visitorId": 31, "personId": {person}}}"#),
            "--json",
        ],
    ));
    let order_client = order["orderClientId"].as_i64().unwrap();
    let line = json(&rowsync(
        &db,
        &[
            "put",
            "orderDetails",
            &format!(
                r#"{{"orderClientId": {order_client}, "productId": 1, "count1": 2, "price": 10}}"#
            ),
            "--json",
        ],
    ));
    let line_client = line["orderDetailClientId"].as_i64().unwrap();
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert_eq!(report["parked"], 1, "{report}");
    let admin = server.server().admin();
    let order_id = admin
        .id_for_client("orders", order_client)
        .expect("the order was saved");
    assert_eq!(admin.id_for_client("orderDetails", line_client), None);
    let letters = json(&rowsync(&db, &["dlq", "list", "--json"]));
    assert_eq!(letters.as_array().unwrap().len(), 1);
    let letter = &letters[0];
    assert!(
        letter["message"]
            .as_str()
            .unwrap()
            .contains("ProductDetailId"),
        "{letter}"
    );
    assert_eq!(letter["changes"].as_array().unwrap().len(), 1);
    assert_eq!(letter["changes"][0]["client_id"], line_client);
    let local = json(&rowsync(
        &db,
        &["get", "orders", &format!("c:{order_client}")],
    ));
    assert_eq!(local["orderId"], order_id);

    // The fix, then the retry.
    ok(&rowsync(
        &db,
        &[
            "put",
            "orderDetails",
            &format!(r#"{{"orderDetailClientId": {line_client}, "productDetailId": {detail}}}"#),
        ],
    ));
    let id = letter["id"].as_i64().unwrap().to_string();
    assert!(ok(&rowsync(&db, &["dlq", "retry", &id])).contains("back in the outbox"));
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert_eq!(report["parked"], 0, "{report}");
    let line_id = admin
        .id_for_client("orderDetails", line_client)
        .expect("the fixed line reached the server");
    let on_server = admin.get("orderDetails", line_id).unwrap();
    assert_eq!(on_server["orderId"], order_id);
    assert_eq!(on_server["productDetailId"], detail);
    assert_eq!(admin.count("orders"), 1, "the order was not sent twice");
}

/// A save whose answer is lost: the server has the order, and resending it
/// would be refused (no idempotency). The engine keeps the create in doubt
/// and confirms it by a pull (by client id) instead of sending it again:
/// the order reaches the server once and gets its server id locally.
#[test]
fn a_lost_answer_is_confirmed_by_a_pull_not_sent_twice() {
    let server = shop();
    let scratch = Scratch::new("indoubt");
    let db = scratch.db();
    init(&db, &server);
    json(&rowsync(&db, &["sync", "--json"]));
    let person = first_id(&db, "people", "personId");
    let order = json(&rowsync(
        &db,
        &[
            "put",
            "orders",
            &format!(r#"{{"orderType": 201, "visitorId": 31, "personId": {person}}}"#),
            "--json",
        ],
    ));
    let client_id = order["orderClientId"].as_i64().unwrap();
    let line = json(&rowsync(
        &db,
        &[
            "put",
            "orderDetails",
            &format!(
                r#"{{"orderClientId": {client_id}, "productDetailId": 1, "count1": 1, "price": 10}}"#
            ),
            "--json",
        ],
    ));
    let line_client = line["orderDetailClientId"].as_i64().unwrap();
    server
        .server()
        .faults()
        .inject(Some("SaveAllData"), Fault::LoseResponseAfterApply, 1);
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert!(report["error"].is_null(), "{report}");
    let admin = server.server().admin();
    assert_eq!(
        admin.count("orders"),
        1,
        "the order reached the server once"
    );
    assert_eq!(admin.count("orderDetails"), 1, "and its line once");
    let server_id = admin.id_for_client("orders", client_id).unwrap();
    let local = json(&rowsync(&db, &["get", "orders", &format!("c:{client_id}")]));
    assert_eq!(local["orderId"], server_id);
    let local = json(&rowsync(
        &db,
        &["get", "orderDetails", &format!("c:{line_client}")],
    ));
    assert_eq!(
        local["orderDetailId"].as_i64(),
        admin.id_for_client("orderDetails", line_client)
    );
    let log = ok(&rowsync(&db, &["log"]));
    assert_eq!(
        log.lines().filter(|l| l.contains("SaveAllData")).count(),
        1,
        "one save, the lost one, and no resend: {log}"
    );
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["counts"]["in_doubt"], 0);
    assert_eq!(status["counts"]["pending"], 0);
    assert_eq!(status["counts"]["dead_letters"], 0);
    // Nothing is left to send: another sync saves nothing.
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert_eq!(report["push_requests"], 0, "{report}");
    assert_eq!(admin.count("orders"), 1);
}

/// A replica holds one visitor's records: when the server's login names
/// another visitor, the sync stops and says how to start over; `wipe`
/// refuses to drop unsent changes unless forced.
#[test]
fn another_visitor_needs_a_wipe() {
    let first = shop();
    let scratch = Scratch::new("visitor");
    let db = scratch.db();
    init(&db, &first);
    json(&rowsync(&db, &["sync", "--json"]));
    ok(&rowsync(
        &db,
        &["put", "orders", r#"{"orderType": 201, "personId": 1}"#],
    ));
    let e = fails(&rowsync(&db, &["wipe"]));
    assert!(e.contains("--force"), "{e}");

    let other = RunningServer::start(ServerConfig {
        visitor_id: 77,
        ..ServerConfig::default()
    })
    .unwrap();
    other.server().admin().seed_persons(3).unwrap();
    ok(&rowsync(&db, &["init", "--url", &other.base_url()]));
    let e = fails(&rowsync(&db, &["sync"]));
    assert!(e.contains("visitor"), "{e}");
    assert!(e.contains("wipe"), "{e}");
    assert_eq!(other.server().admin().count("orders"), 0, "nothing pushed");

    let out = json(&rowsync(&db, &["wipe", "--force", "--json"]));
    assert_eq!(out["lost_changes"], 1);
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert_eq!(report["collections"]["people"]["pulled"], 3);
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["session"]["visitor_id"], 77);
    assert_eq!(status["counts"]["pending"], 0);
}

/// Whatever the input, the CLI answers with an exit code of its own (0, 1
/// or 2) and one line on stderr: never a panic (101).
#[test]
fn odd_input_never_panics() {
    let server = shop();
    let scratch = Scratch::new("odd");
    let db = scratch.db();
    let dir = scratch.0.to_string_lossy().to_string();
    let check = |db: &Path, args: &[&str]| {
        let out = rowsync(db, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "{args:?}: exit {:?}\n{err}",
            out.status.code()
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    };
    // Before any replica, and with a replica path that is a directory.
    check(&db, &["list", "orders"]);
    check(Path::new(&dir), &["status"]);
    check(
        Path::new(&dir),
        &[
            "init",
            "--url",
            "http://127.0.0.1:1/x",
            "--username",
            "u",
            "--database-id",
            "1",
            "--package-number",
            "1",
        ],
    );
    std::fs::write(scratch.0.join("junk.db"), b"not a database at all").unwrap();
    check(&scratch.0.join("junk.db"), &["status"]);
    init(&db, &server);
    json(&rowsync(&db, &["sync", "--json"]));
    let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
    let long = "x".repeat(100_000);
    for args in [
        vec!["init", "--database-id", "99999999999999999999999"],
        vec!["init", "--package-number", "-1"],
        vec!["init", "--page-size", "0"],
        vec!["init", "--batch-size", "0"],
        vec!["init", "--url", ""],
        vec!["init", "--url", "ftp://example.com"],
        vec!["init", "--url", "http://example.com/API/v3"],
        vec!["init", "--collections", ",,,"],
        vec!["init", "--dialect", ""],
        vec!["init", "--pull-endpoint", "../../etc"],
        vec!["init", "--upload-endpoint", "Up load"],
        vec!["init", "--dispute-endpoint", "Solve?x=1"],
        vec!["init", "--order-dispute-endpoint", "/Admin"],
        vec!["put", "orders", "null"],
        vec!["put", "orders", "[]"],
        vec!["put", "orders", "42"],
        vec!["put", "orders", "\"x\""],
        vec!["put", "orders", &deep],
        vec!["put", "orders", &deep_object],
        vec!["put", "orders", r#"{"orderId": "seven"}"#],
        vec!["put", "orders", r#"{"orderId": -1}"#],
        vec!["put", "orders", r#"{"orderId": 1e300}"#],
        vec![
            "put",
            "orders",
            r#"{"orderClientId": 18446744073709551615}"#,
        ],
        vec!["put", "orderDetails", r#"{"orderClientId": "x"}"#],
        vec!["put", "people", r#"{"personId": 1, "deleted": "yes"}"#],
        vec!["put", "", "{}"],
        vec!["put", &long, "{}"],
        vec!["put", "people", &format!(r#"{{"name": "{long}"}}"#)],
        vec!["get", "orders", "c:"],
        vec!["get", "orders", "c:c:1"],
        vec!["get", "orders", "-9223372036854775808"],
        vec!["get", "orders", "99999999999999999999"],
        vec!["get", "", "1"],
        vec!["delete", "orders", "c:-1"],
        vec!["delete", "products", "1"],
        vec!["list", "orders", "--limit", "-1"],
        vec!["list", "orders", "--limit", "18446744073709551615"],
        vec!["list", "nosuch"],
        vec!["dlq", "retry", "#"],
        vec!["dlq", "discard", "-9223372036854775808"],
        vec!["log", "--limit", "0"],
        vec!["log", "--limit", "4294967296"],
        vec!["conflicts", "--clear", "--clear"],
        vec!["status", "extra"],
        vec!["wipe", "now"],
        vec!["upload", "pictures", "c:1", "/nonexistent"],
        vec!["upload", "pictures", "1", "/"],
        vec!["upload", "pictures", "x", "/etc/hostname"],
        vec!["upload", "", "1", "/etc/hostname", "--name", ""],
        vec!["dispute"],
        vec!["dispute", "order", "x"],
        vec!["dispute", "order", "-1"],
        vec!["dispute", "order", "1", "--amount", "nan"],
        vec!["dispute", "record", "products", "1", "-5"],
        vec!["dispute", "reconcile", "nosuch"],
        vec!["tasks", "cancel", "#x"],
        vec!["tasks", "cancel", "99"],
        vec!["serve", "--port"],
        vec!["serve", "--dialect", "klingon"],
        vec!["serve", "--seed-products", "-5"],
        vec!["--json"],
        vec!["--db"],
        vec!["-"],
        vec!["--", "status"],
    ] {
        check(&db, &args);
    }
    // Odd numbers in the settings are the engine's to take or refuse; a
    // sync with them ends, one way or the other.
    init_with(&db, &server, &["--page-size", "0", "--batch-size", "0"]);
    check(&db, &["sync"]);
    init_with(
        &db,
        &server,
        &["--page-size", "5000", "--batch-size", "500"],
    );
    // An endpoint can be renamed (and back to the dialect's own with "").
    let out = json(&rowsync(
        &db,
        &["init", "--pull-endpoint", "GetAllDataV2", "--json"],
    ));
    assert_eq!(out["pull_endpoint"], "GetAllDataV2");
    ok(&rowsync(&db, &["init", "--pull-endpoint", ""]));
    let out = json(&rowsync(
        &db,
        &[
            "init",
            "--upload-endpoint",
            "UploadPicture",
            "--dispute-endpoint",
            "SolveDisputeX",
            "--order-dispute-endpoint",
            "SolveOrderDisputeX",
            "--json",
        ],
    ));
    assert_eq!(out["upload_endpoint"], "UploadPicture");
    assert_eq!(out["dispute_endpoint"], "SolveDisputeX");
    assert_eq!(out["order_dispute_endpoint"], "SolveOrderDisputeX");
    let out = json(&rowsync(
        &db,
        &[
            "init",
            "--upload-endpoint",
            "",
            "--dispute-endpoint",
            "",
            "--order-dispute-endpoint",
            "",
            "--json",
        ],
    ));
    assert_eq!(out["upload_endpoint"], "");
    // The replica still works.
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["base_url"], server.base_url());
    json(&rowsync(&db, &["sync", "--json"]));
}

/// `rowsync serve` speaks the real dialect: the password arrives as its
/// MD5 hash, and the plain password is refused.
#[test]
fn serve_answers_an_md5_login_and_refuses_the_plain_password() {
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--dialect", "mahak"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    {
        use std::io::BufRead;
        let out = child.stdout.take().unwrap();
        std::io::BufReader::new(out).read_line(&mut url).unwrap();
    }
    let login = |password: &str| -> Value {
        let body = serde_json::json!({"userName": "user1", "password": password,
            "databaseId": 1001, "packageNo": "2002"});
        let mut resp = ureq::post(&format!("{}/Sync/Login", url.trim()))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    };
    // md5("pass1")
    let good = login("a722c63db8ec8625af6cf71cb8c2d939");
    let plain = login("pass1");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(good["Result"], true, "{good}");
    assert!(good["Data"]["UserToken"]
        .as_str()
        .is_some_and(|t| t.split('.').count() == 3));
    assert!(good["Data"]["VisitorId"].as_i64().is_some());
    assert!(good["Data"].get("ExpireDate").is_none(), "no expiry field");
    assert_eq!(plain["Result"], false, "{plain}");
}

/// `rowsync serve` hands its flags to the server's own parser: a bad one is
/// a usage error (exit 2), and its help lists every switch of the server.
#[test]
fn serve_checks_its_flags_and_lists_the_servers() {
    let scratch = Scratch::new("serve");
    let db = scratch.db();
    let out = rowsync(&db, &["serve", "--dialect", "klingon"]);
    assert_eq!(out.status.code(), Some(2));
    let e = fails(&out);
    assert!(e.contains("klingon"), "{e}");
    let help = ok(&rowsync(&db, &["serve", "--help"]));
    for flag in [
        "--dialect",
        "--seed-products",
        "--seed-persons",
        "--visitor-id",
        "--exclusive-bound",
    ] {
        assert!(help.contains(flag), "{flag} in {help}");
    }
}

/// Issue 12, defect 5: a file name that is legal on Linux but not UTF-8
/// works as a replica path; bytes that are not UTF-8 anywhere else are a
/// clear usage error (exit 2), never a panic (exit 101).
#[test]
fn arguments_that_are_not_utf8_never_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let server = shop();
    let scratch = Scratch::new("bytes");
    let db = scratch.0.join(OsStr::from_bytes(b"caf\xe9-\xff.db"));
    init(&db, &server);
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["counts"]["pending"], 0);
    assert!(db.exists());
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .arg("put")
        .arg("people")
        .arg(OsStr::from_bytes(b"{\"name\": \"\xff\xfe\"}"))
        .env("ROWSYNC_PASSWORD", "pass1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("UTF-8"));
    let out = Command::new(BIN)
        .arg(OsStr::from_bytes(b"st\xffatus"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_command_has_help() {
    let scratch = Scratch::new("help");
    let db = scratch.db();
    let top = ok(&rowsync(&db, &["--help"]));
    for command in [
        "init",
        "sync",
        "put",
        "get",
        "delete",
        "list",
        "status",
        "dlq",
        "conflicts",
        "log",
        "serve",
        "demo",
        "why",
        "hint",
        "upload",
        "dispute",
        "tasks",
        "stats",
    ] {
        assert!(top.contains(command), "top-level help lists {command}");
        let help = ok(&rowsync(&db, &[command, "--help"]));
        assert!(
            help.starts_with("usage: ") && help.contains("rowsync "),
            "{command}: {help}"
        );
    }
    assert!(!db.exists(), "help never creates a replica");
}

#[test]
fn upload_dispute_and_tasks_commands() {
    let server = shop();
    let scratch = Scratch::new("tasks");
    let db = scratch.db();
    init(&db, &server);
    json(&rowsync(&db, &["sync", "--json"]));
    let pic = json(&rowsync(
        &db,
        &["put", "pictures", r#"{"fileName": "front.jpg"}"#, "--json"],
    ));
    let cid = pic["pictureClientId"].as_i64().unwrap();
    let file = scratch.0.join("front.jpg");
    std::fs::write(&file, b"\xff\xd8 a shop front").unwrap();
    let id = format!("c:{cid}");
    let out = json(&rowsync(
        &db,
        &["upload", "pictures", &id, file.to_str().unwrap(), "--json"],
    ));
    assert!(out["upload"].as_i64().unwrap() > 0);
    std::fs::remove_file(&file).unwrap();
    let text = ok(&rowsync(&db, &["dispute", "order", "501", "--code", "2"]));
    assert!(text.contains("queued 1 dispute request"), "{text}");
    let listed = ok(&rowsync(&db, &["tasks"]));
    assert!(
        listed.contains("waiting for its record's server id"),
        "{listed}"
    );
    assert!(listed.contains("SolveOrderDispute of 1 order"), "{listed}");
    let status = ok(&rowsync(&db, &["status"]));
    assert!(
        status.contains("1 upload(s), 1 dispute(s) queued"),
        "{status}"
    );
    let report = json(&rowsync(&db, &["sync", "--json"]));
    assert_eq!(
        (
            report["uploaded"].as_u64(),
            report["disputes_sent"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(ok(&rowsync(&db, &["tasks"])).contains("no upload or dispute is queued"));
    let uploads = server.server().admin().uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].data, b"\xff\xd8 a shop front");
    // Reconcile: one request naming every product the replica holds.
    let queued = json(&rowsync(
        &db,
        &["dispute", "reconcile", "products", "--json"],
    ));
    assert_eq!(queued["tasks"].as_array().map(Vec::len), Some(1));
    let t = queued["tasks"][0].as_i64().unwrap().to_string();
    ok(&rowsync(&db, &["tasks", "cancel", &t]));
    assert!(json(&rowsync(&db, &["tasks", "--json"]))
        .as_array()
        .unwrap()
        .is_empty());
}

/// Issue 25.3: `status --json` shows `clock_skew_seconds` (the device minus
/// the server's `ServerTime`); past `--clock-skew-warning` the sync and the
/// status warn, and nothing is refused.
#[test]
fn the_clock_skew_is_shown_and_warned_about() {
    let server = RunningServer::start(ServerConfig {
        clock_offset_seconds: 20 * 60,
        ..ServerConfig::default()
    })
    .unwrap();
    server.server().admin().seed_products(2).unwrap();
    let scratch = Scratch::new("clock");
    let db = scratch.db();
    init(&db, &server);
    let report = json(&rowsync(&db, &["sync", "--json"]));
    let skew = report["clock_skew_seconds"].as_i64().expect("a skew");
    assert!((skew + 1200).abs() <= 5, "{report}");
    assert_eq!(report["clock_skew_warning"], true);
    assert!(report["error"].is_null());
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert!((status["clock_skew_seconds"].as_i64().unwrap() + 1200).abs() <= 5);
    assert_eq!(status["clock_skew_warning"], true);
    let text = ok(&rowsync(&db, &["sync"]));
    assert!(text.contains("behind the server's"), "{text}");
    // A threshold of half an hour: shown, no warning.
    init_with(&db, &server, &["--clock-skew-warning", "1800"]);
    let text = ok(&rowsync(&db, &["sync"]));
    assert!(!text.contains("warning"), "{text}");
    let status = json(&rowsync(&db, &["status", "--json"]));
    assert_eq!(status["clock_skew_warning"], false);
    let out = rowsync(&db, &["init", "--clock-skew-warning", "soon"]);
    assert!(fails(&out).contains("--clock-skew-warning"));
}

/// Issue 27.2: `sync` fills the picture cache; `pictures path` prints a
/// picture's file (exit 1 when it has none); `pictures sync` needs no
/// password.
#[test]
fn pictures_are_cached_by_sync_and_shown_by_path() {
    let server = RunningServer::start(ServerConfig::default()).unwrap();
    server.server().admin().seed_products(2).unwrap();
    let ids = server.server().admin().seed_pictures(3).unwrap();
    server
        .server()
        .update_config(|c| c.missing_pictures = vec![ids[2]]);
    let dir = Scratch::new("pictures");
    let db = dir.db();
    init(&db, &server);
    ok(&rowsync(&db, &["sync"]));
    let path = ok(&rowsync(&db, &["pictures", "path", &ids[0].to_string()]));
    let path = PathBuf::from(path.trim());
    assert!(
        path.starts_with(dir.0.join("replica.db.pictures")),
        "{path:?}"
    );
    let record = server.server().admin().get("pictures", ids[0]).unwrap();
    let served = server
        .server()
        .admin()
        .picture_file(record["fileName"].as_str().unwrap())
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), served);
    let e = fails(&rowsync(&db, &["pictures", "path", &ids[2].to_string()]));
    assert!(e.contains("pictures sync"), "{e}");
    let v = json(&rowsync(
        &db,
        &["pictures", "path", &ids[2].to_string(), "--json"],
    ));
    assert!(v["path"].is_null());

    server
        .server()
        .update_config(|c| c.missing_pictures.clear());
    let report = json(&rowsync_env(
        &db,
        &["pictures", "sync", "--json"],
        None,
        None,
    ));
    assert_eq!(report["fetched"], 1);
    assert_eq!(report["cached"], 3);
    ok(&rowsync(&db, &["pictures", "path", &ids[2].to_string()]));
    fails(&rowsync(&db, &["pictures", "frobnicate"]));
}
