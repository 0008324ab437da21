//! Volume: seeding many products and reading them all back in pages.
//! `cargo test -p rowsync-refserver --release --test bulk -- --ignored --nocapture`
//! measures the 1M-record figure.

mod common;

use std::time::Instant;

use common::{expect, server, Client};
use serde_json::json;

fn seed_and_read(n: usize, page: usize) {
    let s = server();
    let t = Instant::now();
    s.admin().seed_products(n).unwrap();
    let seeded = t.elapsed();
    assert_eq!(s.admin().count("products"), n);
    let c = Client::in_process(&s).login();
    let t = Instant::now();
    let (mut after, mut total, mut pages, mut bytes) = (0i64, 0usize, 0usize, 0usize);
    loop {
        let r = c.post(
            "GetAllDataV2",
            json!({"productsRowVersion": after, "pageSize": page}),
        );
        bytes += r.body.len();
        let v = expect(&r, 200, 0);
        let e = &v["data"]["products"];
        let recs = e["records"].as_array().unwrap();
        if let Some(first) = recs.first() {
            assert!(first["rowVersion"].as_i64().unwrap() > after);
        }
        total += recs.len();
        pages += 1;
        after = e["rowVersion"].as_i64().unwrap();
        if e["hasMore"] == false {
            break;
        }
        assert_eq!(recs.len(), page);
    }
    let read = t.elapsed();
    let server_time: std::time::Duration = s
        .requests()
        .iter()
        .filter(|e| e.endpoint == "GetAllDataV2")
        .map(|e| e.elapsed)
        .sum();
    assert_eq!(total, n);
    assert_eq!(after, n as i64);
    eprintln!(
        "{n} products: seeded in {seeded:.2?}, read in {pages} pages of {page} ({} MB) in \
         {read:.2?} (server side {server_time:.2?}, the rest is the test parsing JSON)",
        bytes / 1_000_000
    );
}

#[test]
fn hundred_thousand_products_in_pages() {
    seed_and_read(100_000, 5000);
}

#[test]
#[ignore = "volume measurement; run in release mode"]
fn a_million_products_in_pages() {
    seed_and_read(1_000_000, 5000);
}

/// Seeds `n` products in the mahak dialect (each with its product detail and
/// visitor link: three records) and pulls the products back in pages.
fn mahak_seed_and_read(n: usize, page: usize) {
    let s = rowsync_refserver::RefServer::open(rowsync_refserver::ServerConfig::default()).unwrap();
    let t = Instant::now();
    s.admin().seed_products(n).unwrap();
    let seeded = t.elapsed();
    assert_eq!(s.admin().count("productDetails"), n);
    let mut c = Client::in_process(&s);
    let v = common::body(&c.post(
        "Login",
        json!({"userName": "user1", "password": "a722c63db8ec8625af6cf71cb8c2d939",
               "databaseId": 1001, "packageNo": "2002"}),
    ));
    c.token = Some(v["Data"]["UserToken"].as_str().unwrap().to_string());
    let t = Instant::now();
    let (mut cp, mut seen) = (0i64, std::collections::HashSet::new());
    loop {
        let v = common::body(&c.post(
            "GetAllData",
            json!({"fromProductVersion": cp, "pageSize": page}),
        ));
        let mut news = false;
        for r in v["Data"]["Objects"]["Products"].as_array().unwrap() {
            news |= seen.insert(r["ProductId"].as_i64().unwrap());
            cp = cp.max(r["RowVersion"].as_i64().unwrap());
        }
        if !news {
            break;
        }
    }
    assert_eq!(seen.len(), n);
    eprintln!(
        "mahak: {n} products ({} records) seeded in {seeded:.2?}, products read in {:.2?}",
        3 * n,
        t.elapsed()
    );
}

#[test]
fn mahak_twenty_thousand_products_in_pages() {
    mahak_seed_and_read(20_000, 5000);
}

#[test]
#[ignore = "volume measurement; run in release mode"]
fn mahak_a_million_products_in_pages() {
    mahak_seed_and_read(1_000_000, 5000);
}
