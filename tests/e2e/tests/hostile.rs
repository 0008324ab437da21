//! Hostile answers in the real dialect (issue 23), each drawn by a habit of
//! the reference server and played over loopback HTTP: save results that
//! cannot be matched one to one, a save refused as a whole after it was
//! applied, a pull that stalls mid-body, and pull answers without their
//! `Objects` or with a key given twice. The replica never takes a result
//! for the wrong record, nothing is sent twice, and every malformed answer
//! is a typed error that moves nothing.

use rowsync::{ConnectionState, Engine, Error, RecordId};
use rowsync_e2e::*;
use rowsync_refserver::{Fault, PullObjects, RunningServer, ServerConfig};
use serde_json::{json, Value};

/// A shop over HTTP: products (with their details) and customers.
fn served(config: ServerConfig) -> RunningServer {
    let running = start(config);
    running.server().admin().seed_products(4).unwrap();
    running.server().admin().seed_persons(2).unwrap();
    running
}

/// A sale of two lines (quantities 1 and 2) on the first product detail,
/// for the first customer. Returns the lines' client ids.
fn sale_of_two_lines(e: &Engine) -> (i64, i64) {
    let detail = local_all(e, "productDetails")[0]["productDetailId"]
        .as_i64()
        .unwrap();
    let person = local_all(e, "people")[0]["personId"].as_i64().unwrap();
    e.write(|w| {
        let order = w.create(
            "orders",
            json!({"orderType": 203, "personId": person, "orderDate": "2025-11-29T12:00:00"}),
        )?;
        let oc = client_id(&order, "order");
        let mut lines = Vec::new();
        for count in [1, 2] {
            let line = w.create(
                "orderDetails",
                json!({"orderClientId": oc, "productDetailId": detail, "count1": count, "price": 1_000}),
            )?;
            lines.push(client_id(&line, "orderDetail"));
        }
        Ok((lines[0], lines[1]))
    })
    .unwrap()
}

/// The server's record of `collection` whose client id is `client`.
fn on_server(server: &RunningServer, collection: &str, key: &str, client: i64) -> Vec<Value> {
    server
        .server()
        .admin()
        .dump(collection)
        .into_iter()
        .filter(|r| r[format!("{key}ClientId")].as_i64() == Some(client))
        .collect()
}

/// No pull checkpoint has moved.
fn no_checkpoint(e: &Engine) -> bool {
    e.status().unwrap().checkpoints.iter().all(|(_, c)| *c == 0)
}

fn saves(server: &RunningServer) -> usize {
    server
        .server()
        .requests()
        .iter()
        .filter(|r| r.endpoint.eq_ignore_ascii_case("SaveAllData"))
        .count()
}

/// Each local line holds the server id and the quantity of the server's
/// line with its client id, and the server holds each line once.
fn lines_match_the_server(e: &Engine, server: &RunningServer, lines: [i64; 2]) {
    for lc in lines {
        let there = on_server(server, "orderDetails", "orderDetail", lc);
        assert_eq!(there.len(), 1, "line {lc} is on the server once");
        let local = e
            .get("orderDetails", RecordId::Client(lc))
            .unwrap()
            .expect("the line is in the replica");
        assert_eq!(
            local["orderDetailId"], there[0]["orderDetailId"],
            "line {lc} has its own server id"
        );
        assert_eq!(local["count1"], there[0]["count1"]);
    }
}

/// Issue 23.1: the answer gives both lines `Index: 1` and no client id.
/// Neither result is applied to a record; the reconciling pull settles
/// both, and a later edit of line 0 changes line 0 on the server.
#[test]
fn save_results_that_repeat_an_index_are_applied_to_no_record() {
    let server = served(ServerConfig {
        repeat_save_index: true,
        ..mahak_server_config()
    });
    let db = TempDb::new("h-index");
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    let (l0, l1) = sale_of_two_lines(&e);
    e.sync().unwrap();
    assert_eq!(saves(&server), 1, "nothing is sent again");
    assert!(e.dead_letters().unwrap().is_empty(), "nothing is parked");
    let counts = e.status().unwrap().counts;
    assert_eq!((counts.pending, counts.in_doubt), (0, 0));
    assert_eq!(server.server().admin().count("orderDetails"), 2);
    lines_match_the_server(&e, &server, [l0, l1]);
    // An edit of line 0 reaches line 0, and line 1 stays as it was.
    e.update("orderDetails", RecordId::Client(l0), json!({"count1": 7}))
        .unwrap();
    e.sync().unwrap();
    assert_eq!(
        on_server(&server, "orderDetails", "orderDetail", l0)[0]["count1"],
        7
    );
    assert_eq!(
        on_server(&server, "orderDetails", "orderDetail", l1)[0]["count1"],
        2
    );
    lines_match_the_server(&e, &server, [l0, l1]);
}

/// Issue 23.3: the server saves the records, then answers `Result: false`
/// with no per-record result, at every save. The creates are in doubt and
/// the reconciling pull confirms them: nothing is sent twice, nothing is
/// parked.
#[test]
fn a_save_refused_as_a_whole_after_it_was_applied_is_reconciled_not_resent() {
    let server = served(ServerConfig {
        refuse_saves_after_apply: true,
        ..mahak_server_config()
    });
    let db = TempDb::new("h-refused");
    let e = mahak_engine(&db, &server.base_url());
    e.sync().unwrap();
    let (l0, l1) = sale_of_two_lines(&e);
    let _ = e.sync();
    let admin = server.server().admin();
    assert_eq!(admin.count("orders"), 1, "the order is on the server once");
    assert_eq!(admin.count("orderDetails"), 2);
    assert_eq!(saves(&server), 1, "no create is sent again");
    let letters = e.dead_letters().unwrap();
    assert!(letters.is_empty(), "nothing is parked: {letters:?}");
    let counts = e.status().unwrap().counts;
    assert_eq!((counts.pending, counts.in_doubt), (0, 0));
    lines_match_the_server(&e, &server, [l0, l1]);
}

/// Issue 23.2: every pull answer stalls mid-body. The sync ends after two
/// attempts with `Stalled`, and the connection state says so; a stall that
/// comes once and goes is retried within the sync's budget.
#[test]
fn a_pull_that_stalls_twice_ends_the_sync_as_stalled() {
    let server = served(ServerConfig {
        stall_pulls: true,
        ..mahak_server_config()
    });
    let db = TempDb::new("h-stall");
    let e = Engine::open(&db.0).unwrap();
    e.configure(rowsync::Settings {
        read_timeout_ms: 300,
        max_attempts: 6,
        ..mahak_settings(&server.base_url())
    })
    .unwrap();
    e.set_credentials(credentials()).unwrap();
    let err = e.sync().expect_err("a stalled server ends the sync");
    let pulls = || {
        server
            .server()
            .requests()
            .iter()
            .filter(|r| r.endpoint.eq_ignore_ascii_case("GetAllData"))
            .count()
    };
    assert_eq!(pulls(), 2, "two stalls in a row, then no more attempts");
    assert!(matches!(err, Error::Stalled { .. }), "{err:?}");
    assert!(matches!(
        e.status().unwrap().connection,
        ConnectionState::Stalled { .. }
    ));
    assert!(local_all(&e, "products").is_empty());
    // A stall that comes and goes: retried, and the sync succeeds.
    server.server().update_config(|c| c.stall_pulls = false);
    server
        .server()
        .faults()
        .inject(Some("GetAllData"), Fault::StallResponse, 1);
    e.sync().unwrap();
    assert_eq!(local_all(&e, "products").len(), 4);
    assert_eq!(e.status().unwrap().connection, ConnectionState::Online);
}

/// Issue 23.4: a pull answer with `Data: null`, `Objects: null` or no
/// `Objects` is malformed: the sync fails with `Protocol` and moves nothing.
#[test]
fn a_pull_answer_without_objects_is_malformed() {
    for habit in [
        PullObjects::NullData,
        PullObjects::NullObjects,
        PullObjects::Missing,
    ] {
        let server = served(ServerConfig {
            pull_objects: habit,
            ..mahak_server_config()
        });
        let db = TempDb::new("h-objects");
        let e = mahak_engine(&db, &server.base_url());
        let result = e.sync();
        assert!(
            matches!(result, Err(Error::Protocol { .. })),
            "{habit:?}: {result:?}"
        );
        assert!(local_all(&e, "products").is_empty(), "{habit:?}");
        assert!(no_checkpoint(&e), "{habit:?}");
        // The same server with the habit off: everything comes.
        server
            .server()
            .update_config(|c| c.pull_objects = PullObjects::Normal);
        e.sync().unwrap();
        assert_eq!(local_all(&e, "products").len(), 4, "{habit:?}");
    }
}

/// Issue 23.4: a pulled record that gives an ordinary field twice is
/// refused, as a duplicate `RowVersion` is: nothing is applied.
#[test]
fn a_pulled_record_with_a_key_given_twice_is_refused() {
    let server = served(ServerConfig {
        duplicate_pulled_keys: true,
        ..mahak_server_config()
    });
    let db = TempDb::new("h-dupkey");
    let e = mahak_engine(&db, &server.base_url());
    let result = e.sync();
    assert!(matches!(result, Err(Error::Protocol { .. })), "{result:?}");
    assert!(local_all(&e, "products").is_empty());
    assert!(no_checkpoint(&e));
}
