//! Sync now, for chosen collections (issue 26.2), over loopback HTTP: a
//! salesperson checks stock just before confirming a sale. Only the chosen
//! collections and their link collections are pulled, nothing is pushed,
//! an unknown name is refused before anything is done, and the sync
//! deadline and the one-sync-at-a-time rule hold as for a full sync.

use std::collections::BTreeMap;

use rowsync::{Engine, Error};
use rowsync_e2e::*;
use rowsync_refserver::{Fault, FaultBody, RunningServer};

/// A shop with products and customers, an engine synced with it, and a
/// sale left pending in its outbox.
fn shop_with_a_pending_sale(tag: &str) -> (RunningServer, TempDb, Engine) {
    let server = start(mahak_server_config());
    server.server().admin().seed_products(3).unwrap();
    server.server().admin().seed_persons(2).unwrap();
    let db = TempDb::new(tag);
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    write_sale(&e);
    (server, db, e)
}

fn checkpoints(e: &Engine) -> BTreeMap<String, i64> {
    e.status().unwrap().checkpoints.into_iter().collect()
}

fn saves(server: &RunningServer) -> usize {
    server
        .server()
        .requests()
        .iter()
        .filter(|r| r.endpoint == "SaveAllData")
        .count()
}

#[test]
fn chosen_collections_are_pulled_with_their_links_and_nothing_is_pushed() {
    let (server, _db, e) = shop_with_a_pending_sale("now-only");
    let admin = server.server().admin();
    // New stock and a new customer on the server.
    admin.seed_products(2).unwrap();
    admin.seed_persons(1).unwrap();
    let before = checkpoints(&e);
    let saves_before = saves(&server);

    let report = e.sync_collections(&["products"]).unwrap();

    assert_eq!(
        report.pulled_collections,
        [
            "products",
            "productDetails",
            "productProperties",
            "visitorProducts"
        ]
    );
    assert_eq!((report.pushed, report.push_requests), (0, 0));
    assert_eq!(saves(&server), saves_before, "nothing was sent");
    assert_eq!(
        e.status().unwrap().counts.pending,
        2,
        "the sale still waits"
    );
    assert_eq!(report.pending, 2);
    assert_eq!(local_all(&e, "products").len(), 5);
    assert_eq!(local_all(&e, "visitorProducts").len(), 5);
    assert_eq!(local_all(&e, "people").len(), 2, "people were not pulled");
    let after = checkpoints(&e);
    for (name, checkpoint) in &after {
        let moved = before.get(name) != Some(checkpoint);
        let chosen = ["products", "productDetails", "visitorProducts"].contains(&name.as_str());
        assert_eq!(moved, chosen, "{name}: {before:?} -> {after:?}");
    }

    // The next full sync pushes the sale and brings the customer.
    let full = e.sync().unwrap();
    assert_eq!(full.pushed, 2);
    assert_eq!(local_all(&e, "people").len(), 3);
}

#[test]
fn an_unknown_collection_is_refused_before_anything_is_done() {
    let (server, _db, e) = shop_with_a_pending_sale("now-unknown");
    let requests = server.server().requests().len();
    let last = e.last_report().unwrap();
    let result = e.sync_collections(&["products", "stock"]);
    assert!(
        matches!(&result, Err(Error::UnknownCollection(n)) if n == "stock"),
        "{result:?}"
    );
    assert!(matches!(
        e.sync_collections::<&str>(&[]),
        Err(Error::Config(_))
    ));
    assert_eq!(server.server().requests().len(), requests, "no request");
    assert_eq!(e.last_report().unwrap(), last, "no sync ran");

    // A collection the settings do not want is refused too.
    let mut s = e.settings().unwrap();
    s.collections = vec!["products".into(), "productDetails".into()];
    e.configure(s).unwrap();
    assert!(matches!(
        e.sync_collections(&["people"]),
        Err(Error::Config(_))
    ));
    // Of the link collections, only the wanted ones are pulled.
    let report = e.sync_collections(&["products"]).unwrap();
    assert_eq!(report.pulled_collections, ["products", "productDetails"]);
}

#[test]
fn the_sync_deadline_holds() {
    let (server, _db, e) = shop_with_a_pending_sale("now-deadline");
    let mut s = e.settings().unwrap();
    // No time left for a retry: the first 503 ends the sync.
    s.sync_deadline_ms = 0;
    e.configure(s.clone()).unwrap();
    server
        .server()
        .faults()
        .inject(Some("GetAllData"), Fault::Status(503, FaultBody::Empty), 1);
    let result = e.sync_collections(&["products"]);
    assert!(
        matches!(result, Err(Error::Server { status: 503, .. })),
        "{result:?}"
    );
    // With time to retry, the same fault passes.
    s.sync_deadline_ms = 60_000;
    e.configure(s).unwrap();
    server
        .server()
        .faults()
        .inject(Some("GetAllData"), Fault::Status(503, FaultBody::Empty), 1);
    let report = e.sync_collections(&["products"]).unwrap();
    assert_eq!(report.metrics.retries.server_error, 1);
}

#[test]
fn one_sync_at_a_time() {
    let (server, _db, e) = shop_with_a_pending_sale("now-one");
    // The full sync's first page comes late, so it is still running when
    // the chosen collections' sync is asked for.
    server.server().faults().inject(
        Some("GetAllData"),
        Fault::Latency(std::time::Duration::from_millis(300)),
        1,
    );
    std::thread::scope(|scope| {
        let full = scope.spawn(|| e.sync_all());
        while !e.status().unwrap().syncing && !full.is_finished() {
            std::thread::yield_now();
        }
        let now = e.sync_collections(&["products"]).unwrap();
        let full = full.join().unwrap().unwrap();
        // The second waited for the first to end; each did its own work.
        assert!(
            now.started_at >= full.finished_at,
            "{} < {}",
            now.started_at,
            full.finished_at
        );
        assert_eq!(full.pushed, 2);
        assert_eq!(now.pushed, 0);
    });
}
