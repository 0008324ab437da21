//! Per-collection pull schedules (issue 13, part 3): low-churn reference
//! data waits for its interval, everything else is pulled at every sync,
//! `sync_all` pulls everything, and the push never waits. Time is a
//! virtual clock.

use std::sync::Arc;
use std::time::Duration;

use rowsync::{RecordId, VirtualClock};
use rowsync_e2e::*;
use rowsync_refserver::RefServer;
use serde_json::{json, Map};

fn rename(server: &RefServer, collection: &str, id: i64, name: &str) {
    let mut f = Map::new();
    f.insert("name".into(), json!(name));
    server.admin().update_fields(collection, id, f).unwrap();
}

#[test]
fn due_collections_are_pulled_and_the_push_never_waits() {
    let server = RefServer::open(mahak_server_config()).unwrap();
    server.admin().seed_products(3).unwrap();
    server.admin().seed_persons(3).unwrap();
    let group = server.admin().dump("personGroups")[0]["personGroupId"]
        .as_i64()
        .expect("the shop has person groups");
    let db = TempDb::new("schedule");
    let e = engine_in_process(&db, &server);
    let clock = VirtualClock::new(chrono::Utc::now());
    e.set_clock(Some(Arc::new(clock.clone())));

    // The first sync pulls everything: nothing was ever pulled.
    let r = e.sync().unwrap();
    assert!(r.pulled_collections.contains(&"personGroups".to_string()));
    assert!(r.pulled_collections.contains(&"orders".to_string()));

    // An hour later: person groups (low churn) are not due; people are; a
    // sale still goes out.
    clock.advance(Duration::from_secs(3600));
    rename(&server, "personGroups", group, "renamed in the office");
    let p = e
        .create("people", json!({"name": "مشتری", "mobile": "0912"}))
        .unwrap();
    let r = e.sync().unwrap();
    assert!(
        !r.pulled_collections.contains(&"personGroups".to_string()),
        "{:?}",
        r.pulled_collections
    );
    assert!(r.pulled_collections.contains(&"people".to_string()));
    assert_eq!(r.pushed, 1, "the push does not wait for a schedule");
    assert!(server
        .admin()
        .id_for_client("people", client_id(&p, "person"))
        .is_some());
    let local = e
        .get("personGroups", RecordId::Server(group))
        .unwrap()
        .unwrap();
    assert_ne!(local["name"], "renamed in the office");

    // Six hours after its last pull, the group is due again.
    clock.advance(Duration::from_secs(6 * 3600));
    let r = e.sync().unwrap();
    assert!(r.pulled_collections.contains(&"personGroups".to_string()));
    let local = e
        .get("personGroups", RecordId::Server(group))
        .unwrap()
        .unwrap();
    assert_eq!(local["name"], "renamed in the office");

    // sync_all pulls it at once; an app's own interval holds orders back.
    rename(&server, "personGroups", group, "again");
    let r = e.sync_all().unwrap();
    assert!(r.pulled_collections.contains(&"personGroups".to_string()));
    assert_eq!(
        e.get("personGroups", RecordId::Server(group))
            .unwrap()
            .unwrap()["name"],
        "again"
    );
    let mut s = e.settings().unwrap();
    s.pull_intervals.insert("orders".into(), 600);
    s.pull_intervals.insert("personGroups".into(), 0);
    e.configure(s).unwrap();
    let r = e.sync().unwrap();
    assert!(!r.pulled_collections.contains(&"orders".to_string()));
    assert!(r.pulled_collections.contains(&"personGroups".to_string()));

    // A wipe forgets the schedule with the data: everything is due again.
    e.wipe(true).unwrap();
    let r = e.sync().unwrap();
    assert!(r.pulled_collections.contains(&"orders".to_string()));
    assert_eq!(
        e.get("personGroups", RecordId::Server(group))
            .unwrap()
            .unwrap()["name"],
        "again"
    );
}
