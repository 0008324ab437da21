//! A shared device changes hands (issue 27, part 1; DESIGN.md invariant
//! 16), over loopback HTTP against the reference server speaking the
//! real dialect, where each user is a visitor of its own and what a login
//! saves is booked under its visitor: a sync sends only the signed-in
//! user's changes and stops before another user's with a typed error; a
//! line that hangs under another user's order waits with it; the other
//! user signs in again and its changes arrive once; or they are exported
//! and discarded, never without an export and never without a trace.

use rowsync::{Credentials, Engine, Error, Explanation, RecordId};
use rowsync_e2e::*;
use rowsync_refserver::{RunningServer, ServerConfig};
use serde_json::{json, Value};

const VISITOR_A: i64 = 31;
const VISITOR_B: i64 = 32;

fn two_users() -> RunningServer {
    let server = start(ServerConfig {
        users: vec![
            ("user1".into(), "pass1".into()),
            ("user2".into(), "pass2".into()),
        ],
        user_visitors: vec![("user1".into(), VISITOR_A), ("user2".into(), VISITOR_B)],
        ..mahak_server_config()
    });
    let admin = server.server().admin();
    admin.seed_products(2).unwrap();
    admin.seed_persons(1).unwrap();
    server
}

fn user(name: &str, password: &str) -> Credentials {
    Credentials {
        username: name.into(),
        password: password.into(),
        ..credentials()
    }
}

/// The device as user1 left it: synced once as user1.
fn device(db: &TempDb, server: &RunningServer) -> Engine {
    let e = mahak_engine(db, &server.base_url());
    e.sync().unwrap();
    assert_eq!(e.session().unwrap().unwrap().visitor_id, VISITOR_A);
    e
}

fn person(e: &Engine) -> i64 {
    local_all(e, "people")[0]["personId"].as_i64().unwrap()
}

fn order(e: &Engine, visitor: i64, text: &str) -> i64 {
    let o = e
        .create(
            "orders",
            json!({"orderType": 201, "visitorId": visitor, "personId": person(e), "description": text}),
        )
        .unwrap();
    client_id(&o, "order")
}

/// The server's orders carrying client id `cid`.
fn on_server(server: &RunningServer, cid: i64) -> Vec<Value> {
    server
        .server()
        .admin()
        .dump("orders")
        .into_iter()
        .filter(|o| o["orderClientId"].as_i64() == Some(cid))
        .collect()
}

fn another_user(result: rowsync::Result<rowsync::SyncReport>) -> (String, u64) {
    match result {
        Err(Error::PendingChangesOfAnotherUser { user, count }) => (user, count),
        other => panic!("expected PendingChangesOfAnotherUser, got {other:?}"),
    }
}

/// Issue 27.1: A's order and B's order are both pending when B signs in,
/// and B syncs: the server gets B's order only, booked under B's visitor,
/// and the sync stops before A's with a typed error. A signs in again and
/// syncs: A's order arrives once, under A's visitor.
#[test]
fn each_users_changes_go_out_only_under_its_own_login() {
    let server = two_users();
    let db = TempDb::new("handover");
    let e = device(&db, &server);
    let a = order(&e, VISITOR_A, "A's sale");
    let by = e.status().unwrap().pending_by_user;
    assert_eq!(by.len(), 1);
    assert_eq!(
        (by[0].user.as_deref(), by[0].visitor_id, by[0].pending),
        (Some("user1"), Some(VISITOR_A), 1)
    );

    // The tablet passes to user2, who sells before signing in.
    e.set_credentials(user("user2", "pass2")).unwrap();
    let b = order(&e, VISITOR_B, "B's sale");
    match e.explain("orders", RecordId::Client(a)).unwrap() {
        Explanation::WaitingForUser {
            user, current_user, ..
        } => assert_eq!((user.as_str(), current_user.as_str()), ("user1", "user2")),
        other => panic!("{other:?}"),
    }
    let (who, count) = another_user(e.sync());
    assert_eq!((who.as_str(), count), ("user1", 1));
    assert!(on_server(&server, a).is_empty(), "A's order never under B");
    let b_on_server = on_server(&server, b);
    assert_eq!(b_on_server.len(), 1);
    let b_id = b_on_server[0]["orderId"].as_i64().unwrap();
    assert_eq!(
        server.server().admin().booked_visitor("orders", b_id),
        Some(VISITOR_B)
    );
    assert_eq!(e.session().unwrap().unwrap().visitor_id, VISITOR_B);
    let report = e.last_report().unwrap().unwrap();
    assert_eq!(report.pushed, 1);
    assert!(report.error.unwrap().contains("user1"));
    let by = e.status().unwrap().pending_by_user;
    assert_eq!(by.len(), 1, "{by:?}");
    assert_eq!(
        (by[0].user.as_deref(), by[0].visitor_id, by[0].pending),
        (Some("user1"), Some(VISITOR_A), 1)
    );
    // Again: still nothing of A's goes, and nothing of B's twice.
    another_user(e.sync());
    assert_eq!(on_server(&server, b).len(), 1);

    // user1 signs in again on the device and syncs.
    e.set_credentials(credentials()).unwrap();
    match e.explain("orders", RecordId::Client(a)).unwrap() {
        Explanation::Pending {
            user, visitor_id, ..
        } => {
            assert_eq!(
                (user.as_deref(), visitor_id),
                (Some("user1"), Some(VISITOR_A))
            )
        }
        other => panic!("{other:?}"),
    }
    e.sync().unwrap();
    e.sync().unwrap();
    let a_on_server = on_server(&server, a);
    assert_eq!(a_on_server.len(), 1, "A's order arrives once");
    let a_id = a_on_server[0]["orderId"].as_i64().unwrap();
    assert_eq!(
        server.server().admin().booked_visitor("orders", a_id),
        Some(VISITOR_A)
    );
    assert_eq!(on_server(&server, b).len(), 1);
    assert_eq!(e.status().unwrap().counts.pending, 0);
    assert!(e.status().unwrap().pending_by_user.is_empty());
}

/// B's line under A's order (not on the server yet) waits with it, and
/// `explain` says why; B's own order goes. Under A's login it is A's
/// order that goes, and B's line waits for B.
#[test]
fn a_line_under_another_users_order_waits_with_it() {
    let server = two_users();
    let db = TempDb::new("handover-line");
    let e = device(&db, &server);
    let a = order(&e, VISITOR_A, "A's sale");
    e.set_credentials(user("user2", "pass2")).unwrap();
    let detail = local_all(&e, "productDetails")[0]["productDetailId"]
        .as_i64()
        .unwrap();
    let line = e
        .create(
            "orderDetails",
            json!({"orderClientId": a, "productDetailId": detail, "count1": 1, "price": 1000}),
        )
        .unwrap();
    let line = client_id(&line, "orderDetail");
    let b = order(&e, VISITOR_B, "B's sale");
    let (who, count) = another_user(e.sync());
    assert_eq!((who.as_str(), count), ("user1", 1));
    assert_eq!(on_server(&server, b).len(), 1);
    assert_eq!(server.server().admin().count("orderDetails"), 0);
    match e.explain("orderDetails", RecordId::Client(line)).unwrap() {
        Explanation::WaitingForUsersParent {
            collection, user, ..
        } => assert_eq!((collection.as_str(), user.as_str()), ("orders", "user1")),
        other => panic!("{other:?}"),
    }
    // A signs in: A's order goes; B's line is B's, and waits for B.
    e.set_credentials(credentials()).unwrap();
    let (who, count) = another_user(e.sync());
    assert_eq!((who.as_str(), count), ("user2", 1));
    assert_eq!(on_server(&server, a).len(), 1);
    assert_eq!(server.server().admin().count("orderDetails"), 0);
    e.set_credentials(user("user2", "pass2")).unwrap();
    e.sync().unwrap();
    let lines = server.server().admin().dump("orderDetails");
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["orderId"].as_i64(),
        on_server(&server, a)[0]["orderId"].as_i64()
    );
}

/// A user who will not sign in again: their changes are exported as JSON,
/// then discarded, which is refused without an export of exactly these
/// changes, and leaves each in the discard trail. Nothing reaches the
/// server.
#[test]
fn exported_changes_are_discarded_with_a_trace() {
    let server = two_users();
    let db = TempDb::new("handover-discard");
    let e = device(&db, &server);
    let a = order(&e, VISITOR_A, "A's sale");
    e.set_credentials(user("user2", "pass2")).unwrap();
    assert!(matches!(
        e.discard_pending("user1"),
        Err(Error::PendingChanges(1))
    ));
    let exported = e.export_pending("user1").unwrap();
    assert_eq!(exported.len(), 1);
    let text = serde_json::to_value(&exported).unwrap();
    let c = &text[0];
    assert_eq!(c["collection"], "orders");
    assert_eq!(c["op"], "create");
    assert_eq!(c["user"], "user1");
    assert_eq!(c["visitor_id"], VISITOR_A);
    assert_eq!(c["record"]["orderClientId"], a);
    assert_eq!(c["record"]["description"], "A's sale");
    assert_eq!(c["in_doubt"], false);
    assert!(c["changed_at"].as_str().is_some_and(|t| !t.is_empty()));
    // Edited after the export: the export no longer holds it as it is.
    e.update(
        "orders",
        RecordId::Client(a),
        json!({"description": "A's sale, edited"}),
    )
    .unwrap();
    assert!(matches!(
        e.discard_pending("user1"),
        Err(Error::PendingChanges(1))
    ));
    let exported = e.export_pending("user1").unwrap();
    assert_eq!(exported[0].record["description"], "A's sale, edited");
    assert_eq!(e.discard_pending("user1").unwrap(), 1);
    assert!(e.get("orders", RecordId::Client(a)).unwrap().is_none());
    let trail = e.discarded_changes().unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].change.user.as_deref(), Some("user1"));
    assert_eq!(trail[0].change.record["description"], "A's sale, edited");
    assert!(trail[0].reason.contains("user1"), "{}", trail[0].reason);
    assert_eq!(e.status().unwrap().discarded, 1);
    // B's sync now has nothing of anyone else's left.
    e.sync().unwrap();
    assert!(on_server(&server, a).is_empty());
    assert_eq!(e.discard_pending("user1").unwrap(), 0);
}

/// user1's create whose save answer was lost stays in doubt through
/// user2's syncs: a pull under user2's login may not show user1's records,
/// so it cannot tell the create is missing (invariant 11). user1's next
/// sync reconciles it: on the server once, never sent again.
#[test]
fn another_users_create_in_doubt_waits_for_that_users_pull() {
    use rowsync_refserver::Fault;
    use std::time::Duration;
    let server = two_users();
    let db = TempDb::new("handover-doubt");
    let e = device(&db, &server);
    let a = order(&e, VISITOR_A, "A's sale, answer lost");
    let mut s = e.settings().unwrap();
    s.collections = vec!["products".into()];
    e.configure(s).unwrap();
    let faults = server.server().faults();
    faults.inject(None, Fault::Latency(Duration::ZERO), 2);
    faults.inject(Some("SaveAllData"), Fault::LoseResponseAfterApply, 1);
    faults.inject(Some("GetAllData"), Fault::DropBeforeResponse, 100);
    assert!(e.sync().unwrap_err().is_transient());
    faults.clear();
    assert_eq!(e.status().unwrap().counts.in_doubt, 1);

    // user2 syncs products only: no pull of orders of its own, so the
    // create could be settled only by the reconciling pull, which is not
    // user2's to make. (A pull of orders that shows the order would
    // confirm it, as the server's word.)
    e.set_credentials(user("user2", "pass2")).unwrap();
    let (who, _) = another_user(e.sync());
    assert_eq!(who, "user1");
    assert!(matches!(
        e.explain("orders", RecordId::Client(a)).unwrap(),
        Explanation::InDoubt { .. }
    ));
    assert_eq!(e.status().unwrap().counts.in_doubt, 1, "left for user1");

    e.set_credentials(credentials()).unwrap();
    let mut s = e.settings().unwrap();
    s.collections = Vec::new();
    e.configure(s).unwrap();
    e.sync().unwrap();
    assert_eq!(on_server(&server, a).len(), 1, "once");
    let st = e.status().unwrap().counts;
    assert_eq!((st.pending, st.in_doubt), (0, 0));
}
