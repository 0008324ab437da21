//! `rowsync sync --only` and `rowsync stats` (issue 26) against the
//! reference server on a loopback port: a stock check pulls the chosen
//! collections and pushes nothing, an unknown collection fails before
//! anything is done, and the totals add up across syncs, in words and in
//! JSON, with no record content.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rowsync_refserver::{RunningServer, ServerConfig};

mod common;
use common::{json, ok};

const BIN: &str = env!("CARGO_BIN_EXE_rowsync");

fn rowsync(db: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("ROWSYNC_DB")
        .env("ROWSYNC_PASSWORD", "pass1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rowsync-cli-stats-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn sync_only_then_stats() {
    let server = RunningServer::start(ServerConfig::default()).unwrap();
    server.server().admin().seed_products(6).unwrap();
    server.server().admin().seed_persons(3).unwrap();
    let dir = scratch();
    let db = dir.join("replica.db");
    let url = server.base_url();
    ok(&rowsync(
        &db,
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
        ],
    ));
    assert_eq!(ok(&rowsync(&db, &["stats"])).trim(), "no sync yet");

    // An unknown collection: refused, nothing sent, no sync counted.
    let out = rowsync(&db, &["sync", "--only", "products,stock"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stock"));
    assert!(server.server().requests().is_empty());
    let out = rowsync(&db, &["sync", "--all", "--only", "products"]);
    assert_eq!(out.status.code(), Some(2));

    // A stock check: the products with their links, nothing else.
    let person = r#"{"name": "CLI customer", "mobile": "0912"}"#;
    ok(&rowsync(&db, &["put", "people", person]));
    let report = json(&rowsync(
        &db,
        &["sync", "--only", "products, visitorProducts", "--json"],
    ));
    assert_eq!(
        report["pulled_collections"],
        serde_json::json!([
            "products",
            "productDetails",
            "productProperties",
            "visitorProducts"
        ])
    );
    assert_eq!(report["pushed"], 0);
    assert_eq!(report["pending"], 1, "the customer still waits");
    assert!(report["metrics"]["requests"].as_u64().unwrap() >= 2);
    assert_eq!(report["collections"]["products"]["pulled"], 6);

    let words = ok(&rowsync(&db, &["sync"]));
    assert!(words.contains("network: "), "{words}");

    let stats = json(&rowsync(&db, &["stats", "--json"]));
    assert_eq!(stats["syncs"], 2);
    assert_eq!(stats["collections"]["people"]["pushed"], 1);
    assert_eq!(stats["collections"]["products"]["pulled"], 6);
    let requests = server
        .server()
        .requests()
        .iter()
        .filter(|r| !r.endpoint.starts_with("admin"))
        .count() as u64;
    assert_eq!(stats["totals"]["requests"], requests);
    assert!(!stats.to_string().contains("CLI customer"));

    let words = ok(&rowsync(&db, &["stats"]));
    assert!(words.starts_with("2 sync(s) (0 failed)"), "{words}");
    assert!(words.contains("products"), "{words}");
    let _ = std::fs::remove_dir_all(&dir);
}
