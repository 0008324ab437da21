//! Push hints (issue 13, part 4): a signed hint marks collections due at
//! once; a forged one is refused and changes nothing; a replayed one is a
//! duplicate; hints out of order are fine; polling stays the fallback.

use std::sync::Arc;
use std::time::Duration;

use rowsync::{sign_hint as sign, Error, HintOutcome, RecordId, VirtualClock};
use rowsync_e2e::*;
use rowsync_refserver::RefServer;
use serde_json::{json, Map};

const SECRET: &[u8] = b"the shop's hint secret";

fn hint(id: &str, collections: &[&str], sent_at: &str) -> (Vec<u8>, String) {
    let payload = json!({"id": id, "collections": collections, "sentAt": sent_at})
        .to_string()
        .into_bytes();
    let sig = sign(SECRET, &payload).unwrap();
    (payload, sig)
}

#[test]
fn hints_mark_collections_due_and_forged_or_replayed_ones_do_nothing() {
    let server = RefServer::open(mahak_server_config()).unwrap();
    server.admin().seed_products(2).unwrap();
    server.admin().seed_persons(2).unwrap();
    let group = server.admin().dump("personGroups")[0]["personGroupId"]
        .as_i64()
        .unwrap();
    let db = TempDb::new("hints");
    let e = engine_in_process(&db, &server);
    let clock = VirtualClock::new(chrono::Utc::now());
    e.set_clock(Some(Arc::new(clock.clone())));
    e.sync().unwrap();
    let rename = |name: &str| {
        let mut f = Map::new();
        f.insert("name".into(), json!(name));
        server
            .admin()
            .update_fields("personGroups", group, f)
            .unwrap();
    };
    let local_name = || {
        e.get("personGroups", RecordId::Server(group))
            .unwrap()
            .unwrap()["name"]
            .clone()
    };

    // No secret yet: a configuration error.
    let (p1, s1) = hint("h-2", &["personGroups"], "2026-11-24T10:02:00Z");
    assert!(matches!(e.apply_hint(&p1, &s1), Err(Error::Config(_))));
    e.set_hint_secret(Some(SECRET)).unwrap();

    // A forged hint (another secret, or a payload changed under its
    // signature): refused, and the group is still not due.
    rename("from the office");
    let forged = sign(b"not the secret", &p1).unwrap();
    assert!(matches!(
        e.apply_hint(&p1, &forged),
        Err(Error::HintRefused(_))
    ));
    let (other, _) = hint("h-2", &["personGroups", "orders"], "2026-11-24T10:02:00Z");
    assert!(matches!(
        e.apply_hint(&other, &s1),
        Err(Error::HintRefused(_))
    ));
    clock.advance(Duration::from_secs(60));
    let r = e.sync().unwrap();
    assert!(!r.pulled_collections.contains(&"personGroups".to_string()));
    assert_ne!(local_name(), "from the office");

    // The genuine hint: due at once.
    let outcome = e.apply_hint(&p1, &s1).unwrap();
    assert_eq!(
        outcome,
        HintOutcome::Applied {
            due: vec!["personGroups".into()],
            unknown: vec![],
        }
    );
    let r = e.sync().unwrap();
    assert!(r.pulled_collections.contains(&"personGroups".to_string()));
    assert_eq!(local_name(), "from the office");

    // Replayed: a duplicate, nothing marked due.
    rename("again");
    assert_eq!(e.apply_hint(&p1, &s1).unwrap(), HintOutcome::Duplicate);
    let r = e.sync().unwrap();
    assert!(!r.pulled_collections.contains(&"personGroups".to_string()));

    // An older hint arriving late (out of order) still works, and unknown
    // names are reported, not fatal.
    let (p0, s0) = hint(
        "h-1",
        &["personGroups", "noSuchThing"],
        "2026-11-24T10:01:00Z",
    );
    let outcome = e.apply_hint(&p0, &s0).unwrap();
    assert_eq!(
        outcome,
        HintOutcome::Applied {
            due: vec!["personGroups".into()],
            unknown: vec!["noSuchThing".into()],
        }
    );
    e.sync().unwrap();
    assert_eq!(local_name(), "again");

    // A missed hint loses nothing: the schedule brings the change anyway.
    rename("by polling");
    clock.advance(Duration::from_secs(7 * 3600));
    e.sync().unwrap();
    assert_eq!(local_name(), "by polling");

    // The secret is never stored in the replica.
    drop(e);
    for suffix in ["", "-wal"] {
        let mut p = db.0.clone().into_os_string();
        p.push(suffix);
        if let Ok(bytes) = std::fs::read(std::path::PathBuf::from(p)) {
            assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET));
        }
    }
}
