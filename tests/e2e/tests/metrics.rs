//! Sync metrics (issue 26.3), over loopback HTTP: each report's figures
//! agree with what the reference server saw, the running totals add up
//! across syncs and survive reopening the replica, retries are counted by
//! cause, and no figure carries record content or a token. Nothing asserts
//! on time.

use std::collections::BTreeMap;

use rowsync::SyncReport;
use rowsync_e2e::*;
use rowsync_refserver::{Fault, FaultBody, RunningServer};

/// Records the server returned per collection, in its pull answers since
/// its request log was last cleared.
fn served(server: &RunningServer) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in server.server().requests() {
        if r.endpoint == "GetAllData" {
            for (c, n) in r.counts {
                *out.entry(c).or_default() += n as u64;
            }
        }
    }
    out
}

fn pulled(report: &SyncReport) -> BTreeMap<String, u64> {
    report
        .collections
        .iter()
        .filter(|(_, c)| c.pulled > 0)
        .map(|(n, c)| (n.clone(), c.pulled))
        .collect()
}

#[test]
fn a_reports_figures_agree_with_the_server_and_add_up_in_the_replica() {
    let server = start(mahak_server_config());
    server.server().admin().seed_products(40).unwrap();
    server.server().admin().seed_persons(10).unwrap();
    let db = TempDb::new("metrics");
    let e = mahak_engine(&db, &server.base_url());
    server.server().clear_requests();
    let wire_before = server.server().wire_bytes();

    let first = e.sync().unwrap();
    let m = &first.metrics;
    let seen = server.server().requests();
    assert_eq!(m.requests, seen.len() as u64, "{seen:?}");
    assert_eq!(m.login_requests, 1);
    assert_eq!(m.retries.total(), 0);
    assert_eq!(
        m.requests,
        first.pull_requests + first.push_requests + m.login_requests
    );
    assert!(m.bytes_sent > 0 && m.bytes_sent == m.wire_bytes_sent);
    // The answers came gzipped: fewer bytes on the wire than decoded, and
    // no more than the server wrote (heads included).
    assert!(m.bytes_received > 0);
    assert!(
        m.wire_bytes_received < m.bytes_received,
        "{} !< {}",
        m.wire_bytes_received,
        m.bytes_received
    );
    assert!(m.wire_bytes_received <= server.server().wire_bytes() - wire_before);
    // Each collection's count is its records, all new to the replica; the
    // server may send more (the mahak server repeats the record at a
    // page's lower bound, which the engine knows it has).
    let served_first = served(&server);
    for (c, n) in pulled(&first) {
        assert_eq!(n, e.count(&c, true).unwrap(), "{c}");
        assert!(served_first[&c] >= n, "{c}");
    }
    assert!(served_first
        .iter()
        .all(|(c, n)| *n == 0 || first.collections[c].pulled > 0));
    assert!(m.phases.apply_ms <= m.phases.pull_ms);

    // A sale pushed in a second sync.
    write_sale(&e);
    server.server().clear_requests();
    let second = e.sync_all().unwrap();
    assert_eq!(second.collections["orders"].pushed, 1);
    assert_eq!(second.collections["orderDetails"].pushed, 1);
    assert_eq!(
        second.metrics.requests,
        server.server().requests().len() as u64
    );
    let served_second = served(&server);
    for (c, n) in pulled(&second) {
        assert!(served_second[&c] >= n, "{c}");
    }

    let totals = e.metrics().unwrap();
    assert_eq!((totals.syncs, totals.failed_syncs), (2, 0));
    let mut sum = first.metrics.clone();
    sum.add(&second.metrics);
    assert_eq!(totals.totals, sum);
    assert_eq!(totals.pulled(), first.pulled() + second.pulled());
    assert_eq!(totals.pushed(), 2);
    assert_eq!(totals.collections["orders"].pushed, 1);
    assert_eq!(
        totals.collections["products"].pulled,
        first.collections["products"].pulled
    );
    assert_eq!(totals.since, first.started_at);
    assert_eq!(totals.last_sync_at, second.finished_at);

    // No record content and no token in the figures.
    let text = serde_json::to_string(&totals).unwrap() + &serde_json::to_string(&second).unwrap();
    let name = local_all(&e, "products")[0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!name.is_empty() && !text.contains(&name), "{name}");
    assert!(!text.contains("eyJ"), "a token");

    // The totals are the replica's: they survive reopening it.
    drop(e);
    let e = mahak_engine(&db, &server.base_url());
    assert_eq!(e.metrics().unwrap(), totals);
}

#[test]
fn retries_are_counted_by_cause() {
    let server = start(mahak_server_config());
    server.server().admin().seed_products(5).unwrap();
    server.server().admin().seed_persons(2).unwrap();
    let db = TempDb::new("metrics-retry");
    let e = mahak_engine(&db, &server.base_url());
    let faults = server.server().faults();
    faults.inject(Some("GetAllData"), Fault::Status(503, FaultBody::Empty), 1);
    faults.inject(Some("GetAllData"), Fault::DropBeforeResponse, 1);
    faults.inject(Some("GetAllData"), Fault::CutResponse, 1);
    server.server().clear_requests();
    let r = e.sync().unwrap();
    // An answer cut mid-body short of its declared length is a broken
    // connection to the transport.
    let retries = &r.metrics.retries;
    assert_eq!(
        (retries.server_error, retries.transport),
        (1, 2),
        "{retries:?}"
    );
    assert_eq!(retries.total(), 3);
    assert_eq!(
        r.metrics.requests,
        r.pull_requests + r.push_requests + r.metrics.login_requests + 3
    );
    assert_eq!(r.metrics.requests, server.server().requests().len() as u64);

    // A token the server stops taking: one more login, counted as such.
    faults.inject(Some("GetAllData"), Fault::ExpireToken, 1);
    let r = e.sync_all().unwrap();
    assert_eq!(r.metrics.retries.token_refresh, 1, "{:?}", r.metrics);
    assert_eq!(r.metrics.login_requests, 1);

    let totals = e.metrics().unwrap().totals.retries;
    assert_eq!(
        (totals.server_error, totals.transport, totals.token_refresh),
        (1, 2, 1)
    );
}
