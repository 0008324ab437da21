//! The rowsync demo: a shop's day told as a story, in the real Mahak
//! dialect and vocabulary. It starts the reference Mahak server on a loopback
//! port with a seeded shop (products and their sellable details with the
//! visitor's stock, people, payments), opens a fresh local replica in a
//! temporary directory, logs in (the server names the shop's visitor) and
//! syncs, then plays a point-of-sale day with the network down: sales (orders
//! of type 201 with their lines on product details), a customer's phone
//! changed at the till while the office changes the same customer's address,
//! a payment edited on both sides, a sale for a customer that does not exist,
//! and a line typed with a product instead of a product detail. Then the
//! network comes back and the engine syncs, while the server loses one of its
//! answers: nothing is sent twice, the orders get server ids, the customer is
//! merged field by field, the server wins the payment, the server saves the
//! order but refuses its bad line (partial save), and the refused changes
//! wait in the dead-letter queue until the cashier fixes them. The demo ends
//! by comparing the replica with the server, collection by collection.
//!
//! Every step is checked; [`run`] returns `false` (and the binary exits
//! non-zero) when the story did not happen as expected, saying which part.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rowsync::{Engine, ListOptions, RecordId, Settings, SyncReport};
use rowsync_refserver::{Fault, RefServer, RunningServer, ServerConfig};
use serde_json::{json, Map, Value};

type Res<T> = Result<T, Box<dyn StdError>>;

/// The README's Rust snippets, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

const PRODUCTS: usize = 300;
const CUSTOMERS: usize = 200;
const UNKNOWN_CUSTOMER: i64 = 999_999;

/// Plays the demo, printing the story on stdout. Returns whether everything
/// happened as expected.
pub fn run() -> bool {
    let started = Instant::now();
    let dir = temp_dir();
    let mut story = Story::default();
    let outcome = play(&dir, &mut story);
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!("== The end ==");
    if let Err(e) = outcome {
        println!("The demo stopped early: {e}");
        story.failed.push(format!("the demo stopped early: {e}"));
    }
    let elapsed = started.elapsed();
    if story.failed.is_empty() {
        println!(
            "All {} checks passed: the day happened as told, in {:.1} s.",
            story.passed,
            elapsed.as_secs_f64()
        );
        true
    } else {
        println!(
            "{} of {} checks FAILED ({:.1} s):",
            story.failed.len(),
            story.passed + story.failed.len(),
            elapsed.as_secs_f64()
        );
        for f in &story.failed {
            println!("  - {f}");
        }
        println!("If the engine did this, it is an engine bug: report it with this output.");
        false
    }
}

/// The checks made along the way.
#[derive(Default)]
struct Story {
    passed: usize,
    failed: Vec<String>,
}

impl Story {
    fn check(&mut self, ok: bool, what: impl Into<String>) -> bool {
        let what = what.into();
        if ok {
            self.passed += 1;
            println!("   [ok] {what}");
        } else {
            println!("   [FAILED] {what}");
            self.failed.push(what);
        }
        ok
    }
}

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("rowsync-demo-{}-{nanos}", std::process::id()))
}

fn chapter(title: &str) {
    println!();
    println!("== {title} ==");
}

fn text(v: &Value, field: &str) -> String {
    match v.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn int(v: &Value, field: &str) -> i64 {
    v.get(field).and_then(Value::as_i64).unwrap_or_default()
}

fn money(amount: i64) -> String {
    let digits = amount.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if amount < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn all(engine: &Engine, collection: &str) -> Res<Vec<Value>> {
    let mut out = Vec::new();
    let mut options = ListOptions::default();
    loop {
        let page = engine.list(collection, &options)?;
        out.extend(page.records);
        match page.next_cursor {
            Some(c) => options.after = Some(c),
            None => return Ok(out),
        }
    }
}

fn pulled_line(report: &SyncReport) -> String {
    let parts: Vec<String> = report
        .collections
        .iter()
        .filter(|(_, c)| c.pulled > 0)
        .map(|(n, c)| format!("{} {n}", c.pulled))
        .collect();
    if parts.is_empty() {
        "nothing new".into()
    } else {
        parts.join(", ")
    }
}

fn play(dir: &PathBuf, story: &mut Story) -> Res<()> {
    println!("rowsync demo: one day at a small shop that sells on a tablet, online or not.");

    // ------------------------------------------------------------------
    chapter("1. The office opens: the Mahak server");
    let t = Instant::now();
    // The real server's dialect: MD5 login, GetAllData/SaveAllData.
    let server_config = ServerConfig::default();
    let login = server_config.credentials();
    let running = RunningServer::start(server_config)?;
    let server: Arc<RefServer> = running.server().clone();
    let admin = server.admin();
    admin.seed_products(PRODUCTS)?;
    admin.seed_persons(CUSTOMERS)?;
    admin.seed(
        "payments",
        (1..=5)
            .map(|i| {
                json!({"paymentClientId": 0, "paymentCode": i, "personId": i,
                       "amount": 2_500_000 + i * 100_000, "type": 1,
                       "paymentDate": format!("2025-06-0{i}T09:30:00"), "deleted": false})
            })
            .collect(),
    )?;
    let addr: SocketAddr = running.addr();
    println!(
        "The reference Mahak server listens on {} with {} products ({} sellable details, stocked\nfor the shop's visitor), {} people and {} payments ({} ms).",
        running.base_url(),
        admin.count("products"),
        admin.count("productDetails"),
        admin.count("people"),
        admin.count("payments"),
        t.elapsed().as_millis()
    );

    // ------------------------------------------------------------------
    chapter("2. The tablet joins: a fresh local replica and a first sync");
    std::fs::create_dir_all(dir)?;
    let db = dir.join("shop.db");
    let engine = Engine::open(&db)?;
    engine.configure(Settings {
        base_url: running.base_url(),
        // A quick give-up when the network is down, so the demo stays short.
        max_attempts: 2,
        base_delay_ms: 50,
        max_delay_ms: 200,
        connect_timeout_ms: 1_000,
        timeout_ms: 10_000,
        ..Settings::default()
    })?;
    engine.set_credentials(login)?;
    let t = Instant::now();
    let first = engine.sync()?;
    println!(
        "Replica {} created. First sync pulled {} in {} request(s), {} ms.",
        db.display(),
        pulled_line(&first),
        first.pull_requests,
        t.elapsed().as_millis()
    );
    story.check(
        engine.count("products", false)? == PRODUCTS as u64
            && engine.count("productDetails", false)? == PRODUCTS as u64
            && engine.count("people", false)? == CUSTOMERS as u64,
        format!("the tablet has all {PRODUCTS} products with their details and {CUSTOMERS} people"),
    );
    let session = engine.session()?.ok_or("the login named no visitor")?;
    let visitor = session.visitor_id;
    println!(
        "The server knows the tablet as visitor {visitor} of database {} ({}); every sale carries it.",
        session.database_id,
        session.user_title.trim()
    );
    story.check(visitor > 0, "the login's session names the shop's visitor");

    // The shelf: products, their sellable details (prices), and the stock
    // the office gave this visitor (visitorProducts).
    let names: BTreeMap<i64, String> = all(&engine, "products")?
        .iter()
        .map(|p| (int(p, "productId"), text(p, "name").trim().to_string()))
        .collect();
    let stock: BTreeMap<i64, i64> = all(&engine, "visitorProducts")?
        .iter()
        .filter(|v| int(v, "visitorId") == visitor)
        .map(|v| (int(v, "productDetailId"), int(v, "count1")))
        .collect();
    let details = all(&engine, "productDetails")?;
    println!("The shelf, as the tablet sees it (name, barcode, price, the visitor's stock):");
    for d in details.iter().take(3) {
        println!(
            "   {:<22} {}  {:>12} rials  {:>4} in stock",
            names.get(&int(d, "productId")).map_or("-", String::as_str),
            text(d, "barcode"),
            money(int(d, "price1")),
            stock
                .get(&int(d, "productDetailId"))
                .copied()
                .unwrap_or_default()
        );
    }
    story.check(
        details.iter().all(|d| {
            names.contains_key(&int(d, "productId"))
                && stock.contains_key(&int(d, "productDetailId"))
        }),
        "every sellable detail has its product and the visitor's stock",
    );

    // ------------------------------------------------------------------
    chapter("3. The internet goes down");
    running.stop();
    println!("The shop's connection drops. The tablet keeps selling: every write goes to the");
    println!("local replica and its outbox, in one SQLite transaction.");

    let customers: Vec<Value> = all(&engine, "people")?.into_iter().take(4).collect();
    // A line sells a product detail (a sellable variant, with its prices).
    let products = all(&engine, "productDetails")?;
    if customers.len() < 4 || products.len() < 6 {
        return Err("the seeded shop is too small for the story".into());
    }

    // Three sales, each an order with its lines written as one group.
    let mut sales: Vec<(i64, String, i64)> = Vec::new(); // (order client id, customer, total)
    for (n, customer) in customers.iter().take(3).enumerate() {
        let lines: Vec<(&Value, i64)> = (0..(n + 2))
            .map(|k| (&products[(n * 7 + k * 3) % products.len()], (k as i64) + 1))
            .collect();
        let total: i64 = lines.iter().map(|(p, q)| int(p, "price1") * q).sum();
        let customer_id = int(customer, "personId");
        let order = engine.write(|w| {
            let order = w.create(
                "orders",
                json!({"orderType": 201, "visitorId": visitor, "personId": customer_id,
                       "orderDate": "2025-06-10T10:15:00", "description": "sold at the till"}),
            )?;
            let cid = order["orderClientId"].as_i64().unwrap_or_default();
            for (p, q) in &lines {
                w.create(
                    "orderDetails",
                    json!({"orderClientId": cid, "productDetailId": int(p, "productDetailId"),
                           "count1": q, "price": int(p, "price1")}),
                )?;
            }
            Ok(order)
        })?;
        let cid = int(&order, "orderClientId");
        println!(
            "Sale {}: {} buys {} item(s) for {} rials -> order c:{cid} with {} lines, saved offline.",
            n + 1,
            text(customer, "name").trim(),
            lines.iter().map(|(_, q)| q).sum::<i64>(),
            money(total),
            lines.len()
        );
        let items: Vec<String> = lines
            .iter()
            .map(|(p, q)| {
                format!(
                    "{q} x {}",
                    names.get(&int(p, "productId")).map_or("-", String::as_str)
                )
            })
            .collect();
        println!("   {}", items.join(", "));
        sales.push((cid, text(customer, "name").trim().to_string(), total));
    }

    // The same customer, changed on both sides.
    let regular = &customers[3];
    let regular_id = int(regular, "personId");
    let new_mobile = "09121234567";
    let new_address = "شيراز، خيابان حافظ، پلاك 12";
    engine.update(
        "people",
        RecordId::Server(regular_id),
        json!({ "Mobile": new_mobile }),
    )?;
    admin.update_fields(
        "people",
        regular_id,
        fields(&[("address", json!(new_address))]),
    )?;
    println!(
        "{} drops by with a new phone number: the cashier changes mobile {} -> {}.",
        text(regular, "name").trim(),
        text(regular, "mobile"),
        new_mobile
    );
    println!(
        "Meanwhile the office changes the same customer's address on the desktop: {} -> {}.",
        text(regular, "address"),
        new_address
    );

    // A payment, edited on both sides: payments are financial, the server wins.
    let payment = all(&engine, "payments")?
        .into_iter()
        .next()
        .ok_or("no payment was pulled")?;
    let payment_id = int(&payment, "paymentId");
    let (till_amount, office_amount) = (
        int(&payment, "amount") + 50_000,
        int(&payment, "amount") + 20_000,
    );
    engine.update(
        "payments",
        RecordId::Server(payment_id),
        json!({ "amount": till_amount }),
    )?;
    admin.update_fields(
        "payments",
        payment_id,
        fields(&[("amount", json!(office_amount))]),
    )?;
    println!(
        "Payment #{payment_id} of {} rials: the cashier corrects it to {}, the accountant to {}.",
        money(int(&payment, "amount")),
        money(till_amount),
        money(office_amount)
    );

    // A sale keyed to a customer number that does not exist.
    let bad_product = &products[5];
    let bad_order = engine.write(|w| {
        let order = w.create(
            "orders",
            json!({"orderType": 201, "visitorId": visitor, "personId": UNKNOWN_CUSTOMER,
                   "orderDate": "2025-06-10T11:40:00", "description": "customer number typed by hand"}),
        )?;
        let cid = order["orderClientId"].as_i64().unwrap_or_default();
        w.create(
            "orderDetails",
            json!({"orderClientId": cid, "productDetailId": int(bad_product, "productDetailId"),
                   "count1": 1, "price": int(bad_product, "price1")}),
        )?;
        Ok(order)
    })?;
    let bad_cid = int(&bad_order, "orderClientId");
    println!(
        "Sale 4: the cashier types customer number {UNKNOWN_CUSTOMER} by hand (no such customer) -> order c:{bad_cid}."
    );

    // A line typed with the product's number instead of a product detail:
    // the real server saves the order and refuses the line.
    let split_customer = int(&customers[1], "personId");
    let (split_cid, split_line) = engine.write(|w| {
        let order = w.create(
            "orders",
            json!({"orderType": 201, "visitorId": visitor, "personId": split_customer,
                   "orderDate": "2025-06-10T12:05:00", "description": "line typed by product code"}),
        )?;
        let cid = order["orderClientId"].as_i64().unwrap_or_default();
        let line = w.create(
            "orderDetails",
            json!({"orderClientId": cid, "productId": int(bad_product, "productId"),
                   "count1": 2, "price": int(bad_product, "price1")}),
        )?;
        Ok((cid, line["orderDetailClientId"].as_i64().unwrap_or_default()))
    })?;
    println!(
        "Sale 5: a line is typed with product number {} instead of a product detail -> order c:{split_cid}.",
        int(bad_product, "productId")
    );

    let before = engine.status()?;
    println!(
        "The outbox now holds {} change(s). The tablet tries to sync anyway:",
        before.counts.pending
    );
    let t = Instant::now();
    match engine.sync() {
        Ok(_) => {
            story.check(false, "a sync with the server unreachable fails");
        }
        Err(e) => {
            println!("   sync failed after {} ms: {e}", t.elapsed().as_millis());
            story.check(true, "a sync with the server unreachable fails, quickly");
        }
    }
    let after = engine.status()?;
    story.check(
        after.counts.pending == before.counts.pending,
        format!(
            "nothing is lost: still {} change(s) in the outbox",
            after.counts.pending
        ),
    );

    // ------------------------------------------------------------------
    chapter("4. The internet is back: one sync");
    let running = match RunningServer::serve(server.clone(), &addr.to_string()) {
        Ok(r) => r,
        Err(_) => {
            // The old port is taken: listen elsewhere and tell the engine.
            let r = RunningServer::serve(server.clone(), "127.0.0.1:0")?;
            let mut s = engine.settings()?;
            s.base_url = r.base_url();
            engine.configure(s)?;
            r
        }
    };
    // The line is bad on its way back: the server saves the first batch but
    // its answer never reaches the tablet.
    server
        .faults()
        .inject(Some("SaveAllData"), Fault::LoseResponseAfterApply, 1);
    let t = Instant::now();
    let report = engine.sync()?;
    println!(
        "Sync done in {} ms: pulled {} (the office's edits, and the server's copy of the saved sales),\npushed {} change(s) in {} request(s),",
        t.elapsed().as_millis(),
        pulled_line(&report),
        report.pushed,
        report.push_requests
    );
    println!(
        "resolved {} conflict(s), parked {} change(s) in the dead-letter queue.",
        report.conflicts, report.parked
    );

    // Orders and their new server ids.
    let mapped: BTreeMap<i64, i64> = report
        .id_mappings
        .iter()
        .filter(|(c, _, _)| c == "orders")
        .map(|(_, client, server)| (*client, *server))
        .collect();
    let lines_mapped = report
        .id_mappings
        .iter()
        .filter(|(c, _, _)| c == "orderDetails")
        .count();
    for (cid, customer, total) in &sales {
        match mapped.get(cid) {
            Some(sid) => println!(
                "   order c:{cid} ({customer}, {} rials) is now order #{sid} on the server",
                money(*total)
            ),
            None => println!("   order c:{cid} ({customer}) got no server id"),
        }
    }
    println!("   and {lines_mapped} order lines got their server ids with them.");
    println!(
        "   One save answer was lost on the way: the engine kept those sales in doubt and asked the"
    );
    println!(
        "   server what it had (by client id) before sending anything again. In doubt now: {}.",
        engine.status()?.counts.in_doubt
    );
    story.check(
        sales.iter().all(|(cid, _, _)| mapped.contains_key(cid)),
        "the three offline orders were pushed and got server ids",
    );
    story.check(
        sales.iter().all(|(cid, _, _)| {
            admin
                .dump("orders")
                .iter()
                .filter(|o| int(o, "orderClientId") == *cid)
                .count()
                == 1
        }),
        "despite the lost answer, no order reached the server twice",
    );
    story.check(
        sales.iter().all(|(cid, _, _)| {
            mapped
                .get(cid)
                .and_then(|sid| admin.get("orders", *sid))
                .is_some_and(|o| int(&o, "orderClientId") == *cid)
        }),
        "the server holds each order exactly under the tablet's client id",
    );
    let details_ok = sales.iter().all(|(cid, _, _)| {
        let local = engine
            .get("orders", RecordId::Client(*cid))
            .ok()
            .flatten()
            .map(|o| int(&o, "orderId"));
        local.is_some() && local == mapped.get(cid).copied()
    }) && all(&engine, "orderDetails")?
        .iter()
        .filter(|d| int(d, "orderClientId") != bad_cid && int(d, "orderClientId") != split_cid)
        .all(|d| {
            int(d, "orderDetailId") > 0 && mapped.values().any(|sid| *sid == int(d, "orderId"))
        });
    story.check(
        details_ok,
        "locally, the orders and their lines carry the new server ids",
    );

    // The merged customer.
    let local_c = engine
        .get("people", RecordId::Server(regular_id))?
        .ok_or("the customer vanished from the replica")?;
    let server_c = admin
        .get("people", regular_id)
        .ok_or("the customer vanished from the server")?;
    println!(
        "{} was changed on both sides; people merge field by field:",
        text(&local_c, "name").trim()
    );
    println!(
        "   on the tablet: mobile {}, address {}",
        text(&local_c, "mobile"),
        text(&local_c, "address")
    );
    println!(
        "   on the server: mobile {}, address {}",
        text(&server_c, "mobile"),
        text(&server_c, "address")
    );
    story.check(
        text(&local_c, "mobile") == new_mobile && text(&local_c, "address") == new_address,
        "the tablet keeps the cashier's phone and takes the office's address",
    );
    story.check(
        text(&server_c, "mobile") == new_mobile && text(&server_c, "address") == new_address,
        "the merged customer was sent back: the server has both changes too",
    );

    // The payment: server wins.
    let local_p = engine
        .get("payments", RecordId::Server(payment_id))?
        .ok_or("the payment vanished from the replica")?;
    let conflicts = engine.conflicts()?;
    let logged = conflicts
        .iter()
        .find(|c| c.collection == "payments" && c.server_id == Some(payment_id));
    println!(
        "Payment #{payment_id} is money: the server's figure wins. The tablet now shows {} rials.",
        money(int(&local_p, "amount"))
    );
    if let Some(c) = logged {
        let local_amount = c
            .local
            .as_ref()
            .map(|v| int(v, "amount"))
            .unwrap_or_default();
        println!(
            "   conflict log #{}: resolution {}, fields [{}], the cashier's {} rials kept for review.",
            c.id,
            c.resolution,
            c.fields.join(", "),
            money(local_amount)
        );
    }
    story.check(
        int(&local_p, "amount") == office_amount,
        "the payment shows the accountant's amount",
    );
    story.check(
        logged.is_some_and(|c| c.resolution == "server_wins"),
        "the overridden edit is in the conflict log as server_wins",
    );
    story.check(
        admin
            .get("payments", payment_id)
            .is_some_and(|p| int(&p, "amount") == office_amount),
        "the server's payment was not touched by the tablet",
    );

    // The dead letter.
    let letters = engine.dead_letters()?;
    let letter = letters
        .iter()
        .find(|l| l.changes.iter().any(|c| c.client_id == Some(bad_cid)));
    match letter {
        Some(l) => {
            println!(
                "Order c:{bad_cid} was refused on {}: \"{}\".",
                l.field.as_deref().unwrap_or("-"),
                l.message
            );
            println!(
                "   It waits in the dead-letter queue as letter #{} with its {} change(s); the other sales went through.",
                l.id,
                l.changes.len()
            );
        }
        None => println!("Order c:{bad_cid} is not in the dead-letter queue."),
    }
    story.check(
        letter.is_some_and(|l| l.field.as_deref() == Some("PersonId")),
        "the order for an unknown customer is parked with the server's words on PersonId",
    );
    story.check(
        letter.is_some_and(|l| l.changes.iter().any(|c| c.collection == "orderDetails")),
        "its order line waits with it",
    );
    story.check(
        admin.id_for_client("orders", bad_cid).is_none(),
        "the server never stored the bad order",
    );
    // The partial save: the order saved, its line refused.
    let split_order = engine.get("orders", RecordId::Client(split_cid))?;
    let line_letter = letters
        .iter()
        .find(|l| l.changes.iter().any(|c| c.client_id == Some(split_line)));
    if let Some(l) = line_letter {
        println!(
            "Order c:{split_cid} was saved as #{}, but its line was refused on {}: \"{}\".",
            split_order
                .as_ref()
                .map(|o| int(o, "orderId"))
                .unwrap_or_default(),
            l.field.as_deref().unwrap_or("-"),
            l.message.trim()
        );
    }
    story.check(
        split_order.as_ref().is_some_and(|o| int(o, "orderId") > 0)
            && admin.id_for_client("orders", split_cid).is_some(),
        "the server saved the order of sale 5 although its line failed (partial save)",
    );
    story.check(
        line_letter.is_some_and(|l| l.changes.len() == 1 && l.message.contains("ProductDetailId")),
        "only the refused line waits in the dead-letter queue, with the server's words",
    );

    // ------------------------------------------------------------------
    chapter("5. The cashier fixes the order");
    let real_customer = &customers[0];
    if let Some(l) = letter {
        engine.update(
            "orders",
            RecordId::Client(bad_cid),
            json!({ "personId": int(real_customer, "personId") }),
        )?;
        engine.retry_dead_letter(l.id)?;
        println!(
            "The customer was {}: the cashier corrects the order and puts letter #{} back in the outbox.",
            text(real_customer, "name").trim(),
            l.id
        );
        if let Some(line) = line_letter {
            engine.update(
                "orderDetails",
                RecordId::Client(split_line),
                json!({ "productDetailId": int(bad_product, "productDetailId") }),
            )?;
            engine.retry_dead_letter(line.id)?;
            println!("The bad line gets its product detail and goes back in the outbox too.");
        }
        let report = engine.sync()?;
        let sid = report
            .id_mappings
            .iter()
            .find(|(c, client, _)| c == "orders" && *client == bad_cid)
            .map(|(_, _, s)| *s);
        match sid {
            Some(s) => println!("Synced: order c:{bad_cid} is now order #{s} on the server."),
            None => println!("Synced, but order c:{bad_cid} got no server id."),
        }
        story.check(sid.is_some(), "the fixed order reached the server");
        let split_sid = admin.id_for_client("orders", split_cid);
        story.check(
            admin.dump("orderDetails").iter().any(|d| {
                int(d, "orderDetailClientId") == split_line && Some(int(d, "orderId")) == split_sid
            }),
            "the fixed line joined its order on the server",
        );
        story.check(
            engine.dead_letters()?.is_empty(),
            "the dead-letter queue is empty",
        );
    }

    // ------------------------------------------------------------------
    chapter("6. Closing time: the tablet and the server, side by side");
    let status = engine.status()?;
    println!(
        "Outbox: {} pending, {} parked; dead letters: {}; conflicts logged: {}.",
        status.counts.pending,
        status.counts.parked,
        status.counts.dead_letters,
        status.counts.conflicts
    );
    // A last sync so the tablet has the server's echo of its own writes.
    engine.sync()?;
    let differences = compare(&engine, &server)?;
    story.check(
        status.counts.pending == 0 && status.counts.parked == 0,
        "the outbox is empty",
    );
    story.check(
        differences == 0,
        "the replica and the server hold the same records",
    );
    drop(running);
    Ok(())
}

/// Prints live-record counts per collection on both sides and every record
/// that differs; returns the number of differences.
fn compare(engine: &Engine, server: &RefServer) -> Res<usize> {
    println!(
        "   {:<18} {:>8} {:>8}  differences",
        "collection", "tablet", "server"
    );
    let mut total = 0;
    let catalogue = engine.catalogue()?;
    for def in catalogue.iter() {
        let name = def.name.as_str();
        let server_live: Vec<Value> = server
            .admin()
            .dump(name)
            .into_iter()
            .filter(|r| r.get("deleted") != Some(&Value::Bool(true)))
            .collect();
        let local = all(engine, name)?;
        if server_live.is_empty() && local.is_empty() {
            continue;
        }
        let mut diffs = Vec::new();
        for s in &server_live {
            let id = int(s, &def.id_field);
            match engine.get(name, RecordId::Server(id))? {
                None => diffs.push(format!("{name} #{id} is missing on the tablet")),
                Some(l) if &l != s => {
                    let keys: Vec<String> = s
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(k, v)| l.get(k.as_str()) != Some(v))
                        .map(|(k, _)| k.clone())
                        .collect();
                    diffs.push(format!("{name} #{id} differs in [{}]", keys.join(", ")));
                }
                Some(_) => {}
            }
        }
        for l in &local {
            if l.get(&def.id_field).and_then(Value::as_i64).is_none() {
                diffs.push(format!(
                    "{name} c:{} exists only on the tablet",
                    int(l, &def.client_id_field)
                ));
            }
        }
        println!(
            "   {:<18} {:>8} {:>8}  {}",
            name,
            local.len(),
            server_live.len(),
            if diffs.is_empty() {
                "none".to_string()
            } else {
                diffs.len().to_string()
            }
        );
        for d in diffs.iter().take(5) {
            println!("      {d}");
        }
        total += diffs.len();
    }
    Ok(total)
}
